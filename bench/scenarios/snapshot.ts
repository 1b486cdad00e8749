import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { type BenchContext, type Row, round } from '../lib/context.ts';
import { Daemon } from '../lib/daemon.ts';
import { createSlots, dropSlot, sql } from '../lib/db.ts';

const TABLE = 'public.snap_rows';
const SLOT = 'snap_slot';
const ROUTE = '/v1/api/ws/Snapshot';

/** `COPY table TO STDOUT` through psql into /dev/null: the floor for reading the table out. */
async function copyMs(ctx: BenchContext): Promise<number> {
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
      `COPY ${TABLE} TO STDOUT`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((r) => proc.on('exit', r));
  if (code !== 0) throw new Error(`psql COPY exited ${code}: ${err}`);
  return Date.now() - started;
}

/** Reads the NDJSON body to the end; returns the number of lines. */
async function readLines(res: Response): Promise<number> {
  let lines = 0;
  const reader = res.body!.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return lines;
    for (let i = 0; i < value.length; i++) if (value[i] === 0x0a) lines++;
  }
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
    ctx.log(`snapshot: filling ${rowsInTable} rows`);
    await sql(
      ctx.url,
      `INSERT INTO ${TABLE} (id, n, label) SELECT g, g % 1000, md5(g::text) FROM generate_series(1, $1::bigint) g`,
      [rowsInTable],
    );
    await sql(ctx.url, `VACUUM ANALYZE ${TABLE}`);
    await copyMs(ctx); // warm the cache
    const copy = await copyMs(ctx);
    const started = Date.now();
    const res = await fetch(`${d.url}${ROUTE}${query}`);
    if (res.status !== 200) throw new Error(`${ROUTE} answered ${res.status}: ${await res.text()}`);
    const lines = await readLines(res);
    const ms = Date.now() - started;
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
        note: `ratio against COPY (target ≥ 0.4); ${lines} lines incl. the watermark`,
      },
    ];
    for (const r of rows) ctx.log(JSON.stringify(r));
    return rows;
  } finally {
    await d.stop();
    await dropSlot(ctx.url, SLOT);
  }
}
