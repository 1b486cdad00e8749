import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import pg from 'pg';
import { type BenchContext, type Row, round, sleep } from '../lib/context.ts';
import { Daemon } from '../lib/daemon.ts';
import { createSlots, dropSlot, sql } from '../lib/db.ts';
import { CpuMeter } from '../lib/proc.ts';
import { diffBuckets, histogramQuantile, parseHistogram, quantiles } from '../lib/stats.ts';

const TABLE = 'public.lat_rows';
const SLOT = 'lat_slot';
const TICK_MS = 2;
const HISTOGRAM = 'tag_connector_commit_to_ack_seconds';

/**
 * Writes `rate` rows/s for `ms` (autocommit multi-row INSERTs every ~2 ms, so 1k/s ≈ 2 rows per
 * transaction), `phase` in every row. Returns the rate achieved.
 */
async function write(client: pg.Client, rate: number, ms: number, phase: string): Promise<number> {
  const start = performance.now();
  let sent = 0;
  for (;;) {
    const elapsed = performance.now() - start;
    if (elapsed >= ms) break;
    const due = Math.floor((rate * elapsed) / 1000) - sent;
    if (due > 0) {
      await client.query(`INSERT INTO ${TABLE} (phase, pad) SELECT $1, 'x' FROM generate_series(1, $2)`, [
        phase,
        due,
      ]);
      sent += due;
    } else await sleep(TICK_MS);
  }
  return sent / ((performance.now() - start) / 1000);
}

/**
 * Commit-to-sink latency of the file sink at fixed insert rates, with synchronous_commit=on: the
 * time a line appears in the file (tailed every ms by a worker thread) minus the event's commit
 * `time`; beside it the daemon's own commit-to-ack histogram (after fdatasync; last event of each
 * batch only, bucketed).
 */
export async function latency(ctx: BenchContext, o: { maxRate?: number }): Promise<Row[]> {
  const phaseMs = ctx.quick ? 4000 : 10_000;
  const warmMs = 1000;
  const max = o.maxRate ?? 20_000;
  if (!o.maxRate) ctx.notes.push('latency: no catch-up rate measured; "80% of max" uses 20,000/s');
  const rates: [string, number][] = [
    ['1k/s', 1000],
    ['5k/s', 5000],
    ['80% of max', Math.round(0.8 * max)],
  ];
  await sql(
    ctx.url,
    `CREATE TABLE ${TABLE} (id bigserial PRIMARY KEY, phase text NOT NULL,
       inserted_at timestamptz NOT NULL DEFAULT clock_timestamp(), pad text)`,
  );
  await createSlots(ctx.url, [SLOT]);
  const file = join(ctx.tmp, 'latency.ndjson');
  const d = new Daemon({ pgUrl: ctx.url, slot: SLOT, table: TABLE, sinks: ['file'], filePath: file });
  const tail = new Worker(new URL('../lib/tail-worker.ts', import.meta.url), { workerData: { path: file } });
  const collect = () =>
    new Promise<Record<string, number[]>>((resolve) => {
      tail.once('message', resolve);
      tail.postMessage({ cmd: 'collect' });
    });
  const client = new pg.Client({ connectionString: ctx.url });
  await client.connect();
  const rows: Row[] = [];
  try {
    await d.waitStreaming();
    const [sc] = await sql<{ s: string }>(ctx.url, `SELECT current_setting('synchronous_commit') AS s`);
    for (const [label, rate] of rates) {
      ctx.log(`latency at ${label} (${rate} rows/s)`);
      await write(client, rate, warmMs, 'warm');
      const before = parseHistogram(await d.metrics(), HISTOGRAM, 'sink="file"');
      const cpu = new CpuMeter(d.pid);
      cpu.start();
      const achieved = await write(client, rate, phaseMs, label);
      const cpuMicros = cpu.sample();
      // Let the tail catch up with the last rows, then take this phase's figures.
      const [{ n }] = (await sql<{ n: string }>(
        ctx.url,
        `SELECT count(*) AS n FROM ${TABLE} WHERE phase = $1`,
        [label],
      )) as [{ n: string }];
      let got: number[] = [];
      const seen: Record<string, number[]> = {};
      for (let i = 0; i < 100; i++) {
        await sleep(100);
        for (const [k, v] of Object.entries(await collect())) {
          const list = (seen[k] ??= []);
          for (const x of v) list.push(x); // no push(...v): a big batch overflows the stack
        }
        got = seen[label] ?? [];
        if (got.length >= Number(n)) break;
      }
      const hist = diffBuckets(parseHistogram(await d.metrics(), HISTOGRAM, 'sink="file"'), before);
      const q = quantiles(got);
      const row: Row = {
        scenario: 'latency (file sink)',
        variant: `${label}: ${Math.round(achieved).toLocaleString('en-US')} rows/s written`,
        events: got.length,
        eventsPerSec: Math.round(achieved),
        cpuUsPerChange: round(cpuMicros / Math.max(1, got.length), 1),
        p50Ms: round(q.p50, 1),
        p95Ms: round(q.p95, 1),
        p99Ms: round(q.p99, 1),
        note:
          `line visible; daemon histogram (ack after fdatasync) p50/p99 ≈ ` +
          `${round(histogramQuantile(hist, 0.5) * 1000, 1)}/${round(histogramQuantile(hist, 0.99) * 1000, 1)} ms` +
          (got.length < Number(n) ? `; only ${got.length} of ${n} rows seen` : ''),
        extra: { maxMs: round(q.max, 1), rowsWritten: Number(n), synchronousCommit: sc?.s, histogram: hist },
      };
      ctx.log(JSON.stringify(row));
      rows.push(row);
    }
  } finally {
    await client.end().catch(() => undefined);
    tail.postMessage({ cmd: 'stop' });
    await d.stop();
    await dropSlot(ctx.url, SLOT);
    rmSync(file, { force: true });
  }
  return rows;
}
