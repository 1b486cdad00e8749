import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { type BenchContext, type Row, round } from '../lib/context.ts';
import { Daemon } from '../lib/daemon.ts';
import { createSlots, dropSlot, sql } from '../lib/db.ts';
import { countLines } from '../lib/http-lines.ts';
import { CpuMeter } from '../lib/proc.ts';

const TABLE = 'public.snap_rows';
const SLOT = 'snap_slot';
const ROUTE = '/v1/api/ws/Snapshot';
const ROUNDS = 3;

/** `COPY table TO STDOUT` through psql into /dev/null: the floor for reading the table out. */
export async function copyMs(ctx: BenchContext, table = TABLE): Promise<number> {
  const u = new URL(ctx.url);
  const started = Date.now();
  const proc = spawn(
    join(ctx.pgBin, 'psql'),
    [
      '-h',
      u.hostname,
      '-p',
      u.port,
      '-U',
      'postgres',
      '-d',
      u.pathname.slice(1),
      '-Xqc',
      `COPY ${table} TO STDOUT`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((r) => proc.on('exit', r));
  if (code !== 0) throw new Error(`psql COPY exited ${code}: ${err}`);
  return Date.now() - started;
}

/**
 * The Snapshot route's rate for one table against COPY of the same table. Skipped (with a note) while
 * the route is not there.
 */
export async function snapshot(ctx: BenchContext): Promise<Row[]> {
  const rowsInTable = ctx.quick ? 200_000 : 1_000_000;
  await sql(
    ctx.url,
    `CREATE TABLE ${TABLE} (id bigint PRIMARY KEY, n int NOT NULL, label text NOT NULL, at timestamptz NOT NULL DEFAULT now())`,
  );
  // Filled before the daemon's slot exists: otherwise the daemon would still be decoding these
  // inserts from the WAL while the snapshot is measured, on the same cores.
  ctx.log(`snapshot: filling ${rowsInTable} rows`);
  await sql(
    ctx.url,
    `INSERT INTO ${TABLE} (id, n, label) SELECT g, g % 1000, md5(g::text) FROM generate_series(1, $1::bigint) g`,
    [rowsInTable],
  );
  await sql(ctx.url, `VACUUM ANALYZE ${TABLE}`);
  await createSlots(ctx.url, [SLOT]);
  const d = new Daemon({ pgUrl: ctx.url, slot: SLOT, table: TABLE, sinks: ['stdout'] });
  try {
    await d.waitStreaming();
    const query = `?table=${encodeURIComponent(TABLE)}`;
    const probe = await fetch(`${d.url}${ROUTE}${query}`);
    await probe.body?.cancel();
    if (probe.status !== 200) {
      ctx.notes.push(`snapshot: skipped, GET ${ROUTE} answered ${probe.status} (route not built yet?)`);
      return [];
    }
    await copyMs(ctx); // warm the cache
    // Best of ROUNDS for both, alternating: the machine is shared (PostgreSQL, the daemon, this
    // client), so single runs are noisy. The reader is lean (node:http, newlines counted with
    // Buffer.indexOf): a fetch() body reader costs as much CPU as the daemon and measures itself.
    let copy = Infinity;
    let ms = Infinity;
    let lines = 0;
    let cpuUs = 0;
    const cpu = new CpuMeter(d.pid);
    for (let round = 0; round < ROUNDS; round++) {
      copy = Math.min(copy, await copyMs(ctx));
      cpu.start();
      const started = Date.now();
      const res = await countLines(`${d.url}${ROUTE}${query}`);
      const took = Date.now() - started;
      if (res.status !== 200) throw new Error(`${ROUTE} answered ${res.status}: ${res.head}`);
      if (res.lines !== rowsInTable + 2) throw new Error(`${ROUTE} gave ${res.lines} lines`);
      if (took < ms) {
        ms = took;
        cpuUs = cpu.sample();
      }
      lines = res.lines;
    }
    const copyRate = rowsInTable / (copy / 1000);
    const rate = rowsInTable / (ms / 1000);
    const rows: Row[] = [
      {
        scenario: 'snapshot',
        variant: `COPY ${TABLE} TO STDOUT (psql)`,
        events: rowsInTable,
        seconds: round(copy / 1000, 2),
        eventsPerSec: Math.round(copyRate),
        ratio: 1,
      },
      {
        scenario: 'snapshot',
        variant: `GET ${ROUTE} (NDJSON)`,
        events: lines,
        seconds: round(ms / 1000, 2),
        eventsPerSec: Math.round(rate),
        ratio: round(rate / copyRate, 2),
        cpuUsPerChange: round(cpuUs / rowsInTable, 2),
        note: `ratio against COPY (target ≥ 0.4), best of ${ROUNDS} each; ${lines} lines incl. the header and end; CPU: the daemon's per row`,
      },
    ];
    for (const r of rows) ctx.log(JSON.stringify(r));
    return rows;
  } finally {
    await d.stop();
    await dropSlot(ctx.url, SLOT);
  }
}
