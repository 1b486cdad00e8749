import pg from 'pg';
import { type BenchContext, type Row, round, sleep } from '../lib/context.ts';
import { Daemon } from '../lib/daemon.ts';
import { createSlots, dropSlot, sql } from '../lib/db.ts';
import { paced } from '../lib/pace.ts';
import { diffBuckets, histogramQuantile, parseHistogram } from '../lib/stats.ts';
import { CpuMeter } from '../lib/proc.ts';
import { copyMs } from './snapshot.ts';

const TABLE = 'public.bf_rows';
const LIVE = 'public.bf_live';
const SLOT = 'bf_bench_slot';
const HISTOGRAM = 'tag_connector_commit_to_ack_seconds';
const LIVE_RATE = 200; // transactions per second beside the backfill

async function backfill(d: Daemon): Promise<{ ms: number; rows: number }> {
  const started = Date.now();
  const res = await fetch(`${d.url}/v1/api/backfills`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ tables: [TABLE] }),
  });
  if (res.status !== 202)
    throw new Error(`POST /v1/api/backfills answered ${res.status}: ${await res.text()}`);
  const { id } = (await res.json()) as { id: string };
  for (;;) {
    const b = (await (await fetch(`${d.url}/v1/api/backfills/${id}`)).json()) as {
      state: string;
      rows: number;
      error: string | null;
    };
    if (b.state === 'done') return { ms: Date.now() - started, rows: b.rows };
    if (b.state !== 'queued' && b.state !== 'running') throw new Error(`backfill ${b.state}: ${b.error}`);
    await sleep(50);
  }
}

/**
 * Backfill rate against `COPY` of the same table with the stream idle (docs/backfill.md: target ≥ 0.5),
 * then live-stream latency (commit to sink acknowledgement, the daemon's histogram) while a second
 * backfill of the table runs beside a paced live workload (target p99 ≤ 100 ms). noop sink: the
 * backfill's own cost, as the Snapshot scenario measures the route's.
 */
export async function backfillScenario(ctx: BenchContext): Promise<Row[]> {
  const rowsInTable = ctx.quick ? 200_000 : 1_000_000;
  await sql(
    ctx.url,
    `CREATE TABLE ${TABLE} (id bigint PRIMARY KEY, n int NOT NULL, label text NOT NULL, at timestamptz NOT NULL DEFAULT now())`,
  );
  await sql(ctx.url, `CREATE TABLE ${LIVE} (id serial PRIMARY KEY, v int NOT NULL)`);
  ctx.log(`backfill: filling ${rowsInTable} rows`);
  await sql(
    ctx.url,
    `INSERT INTO ${TABLE} (id, n, label) SELECT g, g % 1000, md5(g::text) FROM generate_series(1, $1::bigint) g`,
    [rowsInTable],
  );
  await sql(ctx.url, `VACUUM ANALYZE ${TABLE}`);
  await createSlots(ctx.url, [SLOT]);
  const d = new Daemon({
    pgUrl: ctx.url,
    slot: SLOT,
    table: `${TABLE},${LIVE}`,
    sinks: ['noop'],
    args: [
      '--backfill-chunk-size',
      process.env.BENCH_BACKFILL_CHUNK ?? '8192',
      // chunks sized by time (the daemon's default 10 ms); 0: every chunk BENCH_BACKFILL_CHUNK rows
      ...(process.env.BENCH_BACKFILL_CHUNK_MS
        ? ['--backfill-chunk-ms', process.env.BENCH_BACKFILL_CHUNK_MS]
        : []),
      // extra daemon flags, e.g. `--stream-retention-bytes 0` (what the Stream retention costs)
      ...(process.env.BENCH_BACKFILL_ARGS?.split(' ').filter(Boolean) ?? []),
    ],
    // Another source tree's CLI (its src/cli/main.ts), to compare builds run by run on a shared machine.
    ...(process.env.BENCH_BACKFILL_CLI ? { cli: process.env.BENCH_BACKFILL_CLI } : {}),
  });
  const client = new pg.Client({ connectionString: ctx.url });
  await client.connect();
  try {
    await d.waitStreaming();
    await copyMs(ctx, TABLE); // warm the cache
    const copy = await copyMs(ctx, TABLE);
    const cpu = new CpuMeter(d.pid);
    cpu.start();
    const idle = await backfill(d);
    const cpuUs = cpu.sample();
    const copyRate = rowsInTable / (copy / 1000);
    const rate = idle.rows / (idle.ms / 1000);

    // The same backfill again, beside a paced live workload; latency of the live transactions only
    // (the histogram observes each transaction once per sink).
    const before = parseHistogram(await d.metrics(), HISTOGRAM, 'sink="noop"');
    let done = false;
    const live = paced(
      LIVE_RATE,
      () => done,
      () => client.query(`INSERT INTO ${LIVE} (v) VALUES (1)`),
      { tickMs: 2, rowsPerStatement: 1 },
    );
    const busy = await backfill(d);
    done = true;
    const { sent } = await live;
    await sleep(500);
    const hist = diffBuckets(parseHistogram(await d.metrics(), HISTOGRAM, 'sink="noop"'), before);
    const q = (p: number) => round(histogramQuantile(hist, p) * 1000, 1);
    const rows: Row[] = [
      {
        scenario: 'backfill',
        variant: `COPY ${TABLE} TO STDOUT (psql)`,
        events: rowsInTable,
        seconds: round(copy / 1000, 2),
        eventsPerSec: Math.round(copyRate),
        ratio: 1,
      },
      {
        scenario: 'backfill',
        variant: 'POST /v1/api/backfills, stream idle (noop sink)',
        events: idle.rows,
        seconds: round(idle.ms / 1000, 2),
        eventsPerSec: Math.round(rate),
        ratio: round(rate / copyRate, 2),
        cpuUsPerChange: round(cpuUs / idle.rows, 2),
        note: 'ratio against COPY (target ≥ 0.5); POST to state done; CPU: the daemon per row',
      },
      {
        scenario: 'backfill',
        variant: `live stream during a backfill (${LIVE_RATE} tx/s)`,
        events: sent,
        seconds: round(busy.ms / 1000, 2),
        eventsPerSec: Math.round(busy.rows / (busy.ms / 1000)),
        p50Ms: q(0.5),
        p99Ms: q(0.99),
        note: 'commit-to-ack of the live transactions during the backfill (daemon histogram; the chunks themselves left out); target p99 ≤ 100 ms',
      },
    ];
    for (const r of rows) ctx.log(JSON.stringify(r));
    return rows;
  } finally {
    await client.end().catch(() => undefined);
    await d.stop();
    await dropSlot(ctx.url, SLOT);
  }
}
