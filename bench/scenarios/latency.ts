import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import pg from 'pg';
import { type BenchContext, type Row, round, sleep } from '../lib/context.ts';
import { Daemon } from '../lib/daemon.ts';
import { createSlots, dropSlot, sql } from '../lib/db.ts';
import { paced } from '../lib/pace.ts';
import { CpuMeter } from '../lib/proc.ts';
import { diffBuckets, histogramQuantile, parseHistogram, quantiles } from '../lib/stats.ts';

const TABLE = 'public.lat_rows';
const TICK_MS = 2;
const HISTOGRAM = 'tag_connector_commit_to_ack_seconds';
/** A phase at 80% of the sustained maximum, measured first (see sustainedMax). */
const MEASURED_MAX = -1;

/**
 * Writes `rate` rows/s for `ms` (autocommit multi-row INSERTs every ~2 ms, so 1k/s ≈ 2 rows per
 * transaction; or statements of exactly `rowsPerStatement` rows, paced), `phase` in every row. Returns
 * the rate achieved.
 */
async function write(
  client: pg.Client,
  rate: number,
  ms: number,
  phase: string,
  rowsPerStatement?: number,
): Promise<number> {
  const { sent, ms: took } = await paced(
    rate,
    (elapsed) => elapsed >= ms,
    (rows) =>
      client.query(`INSERT INTO ${TABLE} (phase, pad) SELECT $1, 'x' FROM generate_series(1, $2)`, [
        phase,
        rows,
      ]),
    { tickMs: rowsPerStatement ? 1 : TICK_MS, ...(rowsPerStatement ? { rowsPerStatement } : {}) },
  );
  return sent / (took / 1000);
}

/** One sink under test: its daemon, the thread that sees its events arrive, and how rows describe it. */
interface Variant {
  sink: string;
  slot: string;
  scenario: string;
  rates: [string, number][];
  daemon(): Daemon;
  /**
   * A worker answering {cmd:'collect'} with {phase: latencies ms[]} (tail-worker.ts protocol). None for
   * the no-op sink: nothing outside the daemon sees its events, so its figures are the daemon's own
   * commit-to-ack histogram (once per transaction, buckets down to 0.5 ms).
   */
  tail?(): Worker;
  /** What the per-event figure is, and what the daemon's histogram observes. */
  seen: string;
  ack: string;
  cleanup(): void;
}

/**
 * Commit-to-sink latency at fixed insert rates, with synchronous_commit=on: the time an event becomes
 * visible in the sink minus the event's commit `time`, per event; beside it the daemon's own
 * commit-to-ack histogram (once per transaction, bucketed).
 * - no-op sink (Stream retention off): the pipeline's own latency, receive → decode → map → ack; from
 *   the daemon's histogram, since nothing outside the daemon sees these events; 1k/s, 5k/s, 80% of max;
 * - file sink: the line appears in the file (tailed every ms by a worker thread); 1k/s, 5k/s, 80% of max;
 * - Kafka sink (exactly-once, when KAFKA_BROKERS / --kafka): the event is returned to a read_committed
 *   consumer (long-polling Fetch in a worker thread), i.e. after its transaction committed; 1k/s, 5k/s.
 */
export async function latency(ctx: BenchContext): Promise<Row[]> {
  await sql(
    ctx.url,
    `CREATE TABLE ${TABLE} (id bigserial PRIMARY KEY, phase text NOT NULL,
       inserted_at timestamptz NOT NULL DEFAULT clock_timestamp(), pad text)`,
  );
  const file = join(ctx.tmp, 'latency.ndjson');
  const variants: Variant[] = [
    {
      sink: 'noop',
      slot: 'lat_noop',
      scenario: 'latency (noop sink)',
      rates: [
        ['1k/s', 1000],
        ['5k/s', 5000],
        ['80% of max', MEASURED_MAX],
      ],
      daemon: () =>
        new Daemon({
          pgUrl: ctx.url,
          slot: 'lat_noop',
          table: TABLE,
          sinks: ['noop'],
          args: ['--stream-retention-bytes', '0'],
        }),
      seen: 'daemon histogram only (per transaction)',
      ack: 'ack at once',
      cleanup: () => undefined,
    },
    {
      sink: 'file',
      slot: 'lat_slot',
      scenario: 'latency (file sink)',
      rates: [
        ['1k/s', 1000],
        ['5k/s', 5000],
        ['80% of max', MEASURED_MAX],
      ],
      daemon: () =>
        new Daemon({ pgUrl: ctx.url, slot: 'lat_slot', table: TABLE, sinks: ['file'], filePath: file }),
      tail: () =>
        new Worker(new URL('../lib/tail-worker.ts', import.meta.url), { workerData: { path: file } }),
      seen: 'line visible',
      ack: 'ack after fdatasync',
      cleanup: () => rmSync(file, { force: true }),
    },
  ];
  const brokers = ctx.env.kafkaBrokers;
  if (brokers) {
    const topic = `bench-latency-${Date.now()}`;
    variants.push({
      sink: 'kafka',
      slot: 'lat_kafka',
      scenario: 'latency (kafka sink, exactly-once)',
      rates: [
        ['1k/s', 1000],
        ['5k/s', 5000],
      ],
      daemon: () =>
        new Daemon({
          pgUrl: ctx.url,
          slot: 'lat_kafka',
          table: TABLE,
          sinks: ['kafka'],
          args: [
            '--kafka-brokers',
            brokers,
            '--topic',
            topic,
            '--kafka-checkpoint-topic',
            `${topic}-checkpoints`,
          ],
        }),
      tail: () =>
        new Worker(new URL('../lib/kafka-tail-worker.ts', import.meta.url), {
          workerData: { brokers, topic },
        }),
      seen: 'read_committed consumer sees it',
      ack: 'ack after the transaction commit',
      cleanup: () => undefined,
    });
  } else
    ctx.notes.push('latency kafka: skipped (KAFKA_BROKERS not set; `--kafka` starts the harness broker)');

  const rows: Row[] = [];
  for (const v of variants) {
    try {
      rows.push(...(await runVariant(ctx, v)));
    } catch (err) {
      if (v.sink !== 'kafka') throw err;
      ctx.notes.push(`latency ${v.sink}: failed: ${(err as Error).message.slice(0, 300)}`);
    }
  }
  return rows;
}

/** Statement size of the maximum and of the "80% of max" phase: the same transactions in both. */
const MAX_STATEMENT_ROWS = 200;

/**
 * The sustained maximum, end to end on this machine: rows written back to back (MAX_STATEMENT_ROWS-row
 * autocommit INSERTs) for `ms`; the rate is what the sink delivered meanwhile
 * (not counting the drain after the writer stopped, when the daemon has the machine to itself). The
 * writer, Postgres and the daemon share the cores, so this (not the catch-up drain rate, which has no
 * writer beside it) is the load "80% of max" is a share of.
 */
async function sustainedMax(client: pg.Client, d: Daemon, ms: number): Promise<number> {
  const before = await d.delivered();
  const start = performance.now();
  let sent = 0;
  while (performance.now() - start < ms) {
    await client.query(`INSERT INTO ${TABLE} (phase, pad) SELECT 'max', 'x' FROM generate_series(1, $1)`, [
      MAX_STATEMENT_ROWS,
    ]);
    sent += MAX_STATEMENT_ROWS;
  }
  const took = performance.now() - start;
  const during = (await d.delivered()) - before;
  await d.waitDelivered(before + sent, 120_000);
  return during / (took / 1000);
}

async function runVariant(ctx: BenchContext, v: Variant): Promise<Row[]> {
  const phaseMs = ctx.quick ? 4000 : 10_000;
  const warmMs = 1000;
  await createSlots(ctx.url, [v.slot]);
  const d = v.daemon();
  const tail = v.tail?.();
  let tailError: Error | undefined;
  tail?.on('error', (err) => (tailError = err));
  const collect = () =>
    new Promise<Record<string, number[]>>((resolve, reject) => {
      const failed = (err: Error) => reject(new Error(`the ${v.sink} tail failed: ${err.message}`));
      if (tailError) return failed(tailError);
      if (!tail) return resolve({});
      tail.once('error', failed);
      tail.once('message', (m: Record<string, number[]>) => {
        tail.off('error', failed);
        resolve(m);
      });
      tail.postMessage({ cmd: 'collect' });
    });
  const client = new pg.Client({ connectionString: ctx.url });
  await client.connect();
  const rows: Row[] = [];
  const match = `sink="${v.sink}"`;
  let maxRate = 0;
  try {
    await d.waitStreaming();
    const [sc] = await sql<{ s: string }>(ctx.url, `SELECT current_setting('synchronous_commit') AS s`);
    for (const [label, planned] of v.rates) {
      let rate = planned;
      if (planned === MEASURED_MAX) {
        ctx.log(`latency (${v.sink}): sustained maximum, writing flat out for ${phaseMs} ms`);
        maxRate = await sustainedMax(client, d, phaseMs);
        rate = Math.round(0.8 * maxRate);
      }
      // phases are told apart by the rows' `phase` column: unique across variants
      const phase = `${v.sink} ${label}`;
      ctx.log(`latency (${v.sink}) at ${label} (${rate} rows/s)`);
      // at 80% of max: the maximum's own transactions, paced (the 2 ms ticks would make smaller ones,
      // and per-transaction costs would then measure a different load than the maximum's)
      const statement = planned === MEASURED_MAX ? MAX_STATEMENT_ROWS : undefined;
      await write(client, rate, warmMs, 'warm', statement);
      const before = parseHistogram(await d.metrics(), HISTOGRAM, match);
      const deliveredBefore = await d.delivered();
      const cpu = new CpuMeter(d.pid);
      cpu.start();
      const achieved = await write(client, rate, phaseMs, phase, statement);
      const cpuMicros = cpu.sample();
      // Let the tail catch up with the last rows, then take this phase's figures.
      const [{ n }] = (await sql<{ n: string }>(
        ctx.url,
        `SELECT count(*) AS n FROM ${TABLE} WHERE phase = $1`,
        [phase],
      )) as [{ n: string }];
      let got: number[] = [];
      const seen: Record<string, number[]> = {};
      if (!tail) await d.waitDelivered(deliveredBefore + Number(n), 60_000);
      for (let i = 0; tail && i < 100; i++) {
        await sleep(100);
        for (const [k, list] of Object.entries(await collect())) {
          const to = (seen[k] ??= []);
          for (const x of list) to.push(x); // no push(...list): a big batch overflows the stack
        }
        got = seen[phase] ?? [];
        if (got.length >= Number(n)) break;
      }
      const hist = diffBuckets(parseHistogram(await d.metrics(), HISTOGRAM, match), before);
      const hq = (p: number) => histogramQuantile(hist, p) * 1000;
      const q = tail
        ? quantiles(got)
        : { p50: hq(0.5), p95: hq(0.95), p99: hq(0.99), max: NaN, n: hist.at(-1)?.[1] ?? 0 };
      const row: Row = {
        scenario: v.scenario,
        variant:
          `${label}: ${Math.round(achieved).toLocaleString('en-US')} rows/s written` +
          (planned === MEASURED_MAX ? ` (max ${Math.round(maxRate).toLocaleString('en-US')}/s)` : ''),
        events: tail ? got.length : Number(n),
        eventsPerSec: Math.round(achieved),
        cpuUsPerChange: round(cpuMicros / Math.max(1, Number(n)), 1),
        p50Ms: round(q.p50, 1),
        p95Ms: round(q.p95, 1),
        p99Ms: round(q.p99, 1),
        note:
          `${v.seen}; daemon histogram (${v.ack}) p50/p99 ≈ ` +
          `${round(hq(0.5), 1)}/${round(hq(0.99), 1)} ms` +
          (tail ? '' : ` over ${q.n} transactions`) +
          (tail && got.length < Number(n) ? `; only ${got.length} of ${n} rows seen` : ''),
        extra: {
          ...(planned === MEASURED_MAX ? { sustainedMaxPerSec: Math.round(maxRate) } : {}),
          maxMs: round(q.max, 1),
          rowsWritten: Number(n),
          synchronousCommit: sc?.s,
          histogram: hist,
        },
      };
      ctx.log(JSON.stringify(row));
      rows.push(row);
    }
  } finally {
    await client.end().catch(() => undefined);
    tail?.postMessage({ cmd: 'stop' });
    await d.stop();
    await dropSlot(ctx.url, v.slot);
    v.cleanup();
  }
  return rows;
}
