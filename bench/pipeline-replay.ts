/**
 * The pipeline alone, no database: captured wal2json messages (one per line, as
 * `pg_logical_slot_get_changes(..., 'format-version','2', ...)` prints them) are replayed through the
 * real Pipeline (decoder → mapper → checkpoint tracker → a sink runner with the noop sink) as fast as
 * it takes them, with pause/resume honoured like the replication socket. CPU per change here is the
 * daemon's own cost, repeatable enough to compare builds (`--cpu-prof`, `--trace-gc` work as usual):
 *
 *   node --max-semi-space-size=8 bench/pipeline-replay.ts [messages.txt] [changes=600000]
 *   BENCH_HOLD_MS=15 node ...   (the sink holds each batch 15 ms, as a Kafka transaction does)
 *
 * The default messages are bench/fixtures/wal2json-sample.txt (200 inserts into the catch-up table, then
 * the UPDATEs of those rows, as the catch-up backlog has them). bench/capture-fixtures.ts captures the
 * workloads' messages in both plugins' forms (`bench/fixtures/{narrow,wide}-{wal2json,pgoutput}.txt`):
 * a `-pgoutput` file replays through the pgoutput decoder, and the in-process "bare reader" is then
 * pg-logical-replication's PgoutputPlugin parser instead of JSON.parse. The catalog describes the
 * table as the wal2json twin's first INSERT lists it (so TOAST completion runs as in the daemon).
 * V8 runs with the CLI's flags: the same `--max-semi-space-size` as the shebang, and
 * src/cli/v8-flags.ts imported first.
 */
import '../src/cli/v8-flags.ts';
import { existsSync, readFileSync } from 'node:fs';
import pino from 'pino';
import { PgoutputPlugin } from 'pg-logical-replication';
import type { TableInfo } from '../src/extractor/decode/catalog.ts';
import { isToastable } from '../src/extractor/decode/values.ts';
import { NoopSink } from '../src/sinks/noop.ts';
import { replayPipeline } from '../test/support/replay-pipeline.ts';
import { ReplaySource, WAL2JSON_SAMPLE } from '../test/support/replay-source.ts';

const [fileArg, changesArg] = process.argv.slice(2);
const target = Number(changesArg ?? 600_000);
const file = fileArg ?? WAL2JSON_SAMPLE;
const source = new ReplaySource(target, file);

/** The table as the catalog would describe it, from the wal2json twin's first INSERT and UPDATE. */
function tableOf(messagesFile: string): TableInfo | undefined {
  const twin = messagesFile.replace(/-pgoutput\.txt$/, '-wal2json.txt');
  if (!existsSync(twin)) return undefined;
  const lines = readFileSync(twin, 'utf8').split('\n');
  type Col = { name: string; type: string };
  type Msg = { schema: string; table: string; columns: Col[]; identity?: Col[] };
  const insert = JSON.parse(lines.find((l) => l.startsWith('{"action":"I"'))!) as Msg;
  const update = lines.find((l) => l.startsWith('{"action":"U"'));
  const full = update !== undefined && (JSON.parse(update) as Msg).identity?.length === insert.columns.length;
  const name = `${insert.schema}.${insert.table}`;
  return {
    name,
    root: name,
    columns: insert.columns.map((c) => ({ name: c.name, type: c.type, toastable: isToastable(c.type) })),
    pk: ['id'],
    replicaIdentity: full ? 'f' : 'd',
  };
}
const table = tableOf(file);

const logger = pino({ level: 'warn' }, pino.destination(2));
/**
 * BENCH_HOLD_MS=n: the sink acknowledges each batch n ms after it got it (one batch at a time), as a
 * Kafka transaction or an fdatasync does: events then live as long as they do in the daemon, and the
 * CPU per change includes the GC cost of that (with the noop sink they die young).
 */
const holdMs = Number(process.env.BENCH_HOLD_MS ?? 0);
class HoldingSink extends NoopSink {
  override async write(): Promise<void> {
    await new Promise((r) => setTimeout(r, holdMs));
  }
}
const { pipeline, drained } = await replayPipeline(
  source,
  [holdMs > 0 ? new HoldingSink() : new NoopSink()],
  {
    logger,
    batchSize: 2000,
    maxInFlightEvents: 5000,
    maxInFlightBytes: 16 * 1024 * 1024,
    ...(table ? { table } : {}),
  },
);
const rowBufs = Array.from({ length: source.txSize }, (_, i) => source.rowBuf(i));
// The same messages through JSON.parse (or pgoutput: the library's parser) alone, first: the
// in-process "bare reader" for the ratio.
const bareCpu0 = process.cpuUsage();
let parsed = 0;
// BENCH_SKIP_BARE=1: the pipeline alone (a --cpu-prof of the daemon's code only)
const skipBare = process.env.BENCH_SKIP_BARE === '1';
if (skipBare) {
  // no in-process bare reader
} else if (source.plugin === 'pgoutput') {
  const parser = new PgoutputPlugin({ protoVersion: 1, publicationNames: ['bench'] });
  for (const m of source.preambleBufs()) parser.parse(m);
  for (let i = 0, row = 0; i < target; i++) {
    const msg = parser.parse(rowBufs[row]!) as { new?: Record<string, unknown> };
    if (msg.new) parsed += Object.keys(msg.new).length;
    if (++row === rowBufs.length) row = 0;
  }
} else {
  const beginText = source.beginText();
  for (let i = 0, row = 0; i < target; i++) {
    if (row === 0) JSON.parse(beginText);
    parsed += (JSON.parse(rowBufs[row]!.toString('utf8')) as { columns: unknown[] }).columns.length;
    if (++row === rowBufs.length) row = 0;
  }
}
const bareCpu = process.cpuUsage(bareCpu0);
const bareUs = (bareCpu.user + bareCpu.system) / target;

const cpu0 = process.cpuUsage();
const t0 = performance.now();
await pipeline.start();
await drained();
const ms = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
await pipeline.stop(1000);
process.stdout.write(
  JSON.stringify({
    changes: target,
    ms: Math.round(ms),
    perSec: Math.round(target / (ms / 1000)),
    cpuUsPerChange: +((cpu.user + cpu.system) / target).toFixed(2),
    plugin: source.plugin,
    [source.plugin === 'pgoutput' ? 'pgoutputParserUsPerChange' : 'jsonParseUsPerChange']: +bareUs.toFixed(2),
    columnsParsed: parsed,
    peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
    ...(holdMs > 0 ? { holdMs } : {}),
  }) + '\n',
);
process.exit(0);
