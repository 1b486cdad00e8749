/**
 * The "bare reader" ceiling: pg-logical-replication + JSON.parse of every wal2json message, nothing
 * else (acknowledgements off, no decoding of values, no sink). Run as a child of bench/run.ts so its
 * CPU time is its own:
 *
 *   node bench/bare-reader.ts <pg-url> <slot> <changes> '<wal2json options as JSON>'
 *   node bench/bare-reader.ts <pg-url> <slot> <changes> pgoutput <publication>
 *
 * The second form reads a pgoutput slot with the library's own PgoutputPlugin: its parser decodes every
 * message into objects with values through pg's type parsers (the pgoutput counterpart of JSON.parse).
 *
 * Prints one JSON line when `changes` row changes (I/U/D) have been parsed, then exits.
 */
import type pg from 'pg';
import { LogicalReplicationService, PgoutputPlugin } from 'pg-logical-replication';

const [url, slot, changesArg, optionsArg] = process.argv.slice(2);
if (!url || !slot || !changesArg) {
  process.stderr.write('usage: bare-reader.ts <pg-url> <slot> <changes> [options-json]\n');
  process.exit(2);
}
const expected = Number(changesArg);
const pgoutput = optionsArg === 'pgoutput';
const publication = process.argv[6] ?? 'bench';
const options = pgoutput ? {} : (JSON.parse(optionsArg ?? '{}') as Record<string, string>);

const service = new LogicalReplicationService(
  { connectionString: url, application_name: 'bench-bare-reader' },
  { acknowledge: { auto: false, timeoutSeconds: 0 }, flowControl: { enabled: false } },
);
let changes = 0;
let messages = 0;
let lastEnd = '';
let startedAt = 0;
let cpuAtStart: NodeJS.CpuUsage = process.cpuUsage();

const rawPlugin = {
  name: 'raw',
  options,
  parse: (buffer: Buffer) => buffer,
  start: (client: pg.Client, s: string, lsn: string) => {
    const opts = Object.entries(options)
      .map(([k, v]) => `"${k}" '${v.replace(/'/g, "''")}'`)
      .join(', ');
    return client.query(`START_REPLICATION SLOT "${s}" LOGICAL ${lsn}${opts ? ` (${opts})` : ''}`);
  },
};

service.on('start', () => {
  startedAt = Date.now();
  cpuAtStart = process.cpuUsage();
  process.stdout.write(JSON.stringify({ ev: 'start', t: startedAt }) + '\n');
});
const plugin = pgoutput
  ? new PgoutputPlugin({ protoVersion: 1, publicationNames: [publication] })
  : rawPlugin;

service.on('data', (_lsn: string, data: Buffer | { tag: string; commitEndLsn?: string | null }) => {
  if (pgoutput) {
    const msg = data as { tag: string; commitEndLsn?: string | null };
    messages++;
    const tag = msg.tag;
    if (tag === 'insert' || tag === 'update' || tag === 'delete') changes++;
    else if (tag === 'commit') {
      if (msg.commitEndLsn) lastEnd = msg.commitEndLsn;
      if (changes >= expected) finish();
    }
    return;
  }
  const buf = data as Buffer;
  const msg = JSON.parse(buf.toString('utf8')) as { action: string; nextlsn?: string };
  messages++;
  const a = msg.action;
  if (a === 'I' || a === 'U' || a === 'D') changes++;
  else if (a === 'C' && msg.nextlsn) lastEnd = msg.nextlsn;
  if (changes >= expected && a === 'C') finish();
});
service.on('error', (err: Error) => {
  process.stderr.write(`bare reader: ${err.message}\n`);
  process.exit(1);
});

function finish(): void {
  const t = Date.now();
  const cpu = process.cpuUsage(cpuAtStart);
  process.stdout.write(
    JSON.stringify({
      ev: 'done',
      t,
      ms: t - startedAt,
      changes,
      messages,
      lastEnd,
      cpuMicros: cpu.user + cpu.system,
    }) + '\n',
  );
  process.exit(0);
}

service.subscribe(plugin as never, slot, '0/0').catch((err: Error) => {
  process.stderr.write(`bare reader: ${err.message}\n`);
  process.exit(1);
});
