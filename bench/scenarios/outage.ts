import { existsSync } from 'node:fs';
import pg from 'pg';
import { KafkaBroker, kafkaHome } from '../../test/support/kafka.ts';
import { type BenchContext, type Row, round, sleep } from '../lib/context.ts';
import { Daemon } from '../lib/daemon.ts';
import { createSlots, dropSlot, sql } from '../lib/db.ts';
import { paced } from '../lib/pace.ts';
import { memory } from '../lib/proc.ts';

const TABLE = 'public.outage_rows';
const RATE = 2000;

/**
 * A sink outage under steady load: the Kafka sink's broker (a private one: stopping the shared broker
 * would disturb the other scenarios) is stopped for 60 s (15 s with --quick) while rows keep coming at
 * 2,000/s. The daemon must stop reading at its in-flight bound (RSS flat, not growing with the
 * backlog), then drain the backlog once the broker is back. Reported: RSS before, peak during and after,
 * and how long the drain took.
 */
export async function sinkOutage(ctx: BenchContext): Promise<Row[]> {
  if (!ctx.env.kafkaBrokers || !existsSync(kafkaHome())) {
    ctx.notes.push('memory: sink outage skipped (needs the harness Kafka: `--kafka`)');
    return [];
  }
  const outageMs = ctx.quick ? 15_000 : 60_000;
  const broker = new KafkaBroker();
  ctx.log('outage: starting a private Kafka broker');
  await broker.start();
  await sql(ctx.url, `CREATE TABLE ${TABLE} (id bigserial PRIMARY KEY, n int NOT NULL, pad text)`);
  await createSlots(ctx.url, ['outage_slot']);
  const d = new Daemon({
    pgUrl: ctx.url,
    slot: 'outage_slot',
    table: TABLE,
    sinks: ['kafka'],
    args: [
      ...['--kafka-brokers', broker.brokers, '--kafka-replication-factor', '1'],
      ...['--topic', `outage-${Date.now()}`, '--sink-retry-limit', '10000'],
    ],
  });
  const client = new pg.Client({ connectionString: ctx.url });
  let written = 0;
  let loading = true;
  const load = paced(
    RATE,
    () => !loading,
    async (rows) => {
      await client.query(
        `INSERT INTO ${TABLE} (n, pad) SELECT g, md5(g::text) FROM generate_series(1, $1) g`,
        [rows],
      );
      written += rows;
    },
    { tickMs: 5 },
  );
  const rss = { before: 0, during: 0, after: 0 };
  let phase: keyof typeof rss = 'before';
  const sampler = setInterval(() => {
    const r = memory(d.pid).rss;
    if (r > rss[phase]) rss[phase] = r;
  }, 200);
  try {
    await client.connect();
    await d.waitStreaming();
    await sleep(5000);
    ctx.log(`outage: broker stopped for ${outageMs / 1000} s under ${RATE} rows/s`);
    phase = 'during';
    await broker.stop('kill');
    const downAt = performance.now();
    const deliveredAtStop = await d.delivered();
    await sleep(outageMs);
    const info = await d.info();
    const writtenAtRestart = written;
    phase = 'after';
    await broker.start();
    const upAt = performance.now();
    ctx.log(`outage: broker back after ${round((upAt - downAt) / 1000, 1)} s; draining`);
    await sleep(5000);
    loading = false;
    await load;
    const total = written;
    await d.waitDelivered(total, 10 * 60_000);
    const drainedAt = performance.now();
    const backlog = writtenAtRestart - deliveredAtStop;
    const row: Row = {
      scenario: 'memory',
      variant: `Kafka broker down ${outageMs / 1000} s under ${RATE.toLocaleString('en-US')} rows/s`,
      events: total,
      seconds: round((drainedAt - upAt) / 1000, 1),
      eventsPerSec: Math.round(backlog / ((drainedAt - upAt) / 1000)),
      peakRssMb: Math.round(Math.max(rss.before, rss.during, rss.after) / 2 ** 20),
      note:
        `RSS before/during/after the outage ${mb(rss.before)}/${mb(rss.during)}/${mb(rss.after)} MB; ` +
        `${backlog.toLocaleString('en-US')} rows backlogged, all ${total.toLocaleString('en-US')} delivered ` +
        `${round((drainedAt - upAt) / 1000, 1)} s after the broker returned; in flight at the bound: ` +
        `${info.inFlight?.events ?? '?'} events`,
      extra: {
        outageMs,
        rssMb: { before: mb(rss.before), during: mb(rss.during), after: mb(rss.after) },
        state: info.state,
        inFlight: info.inFlight,
        backlog,
      },
    };
    ctx.log(JSON.stringify(row));
    return [row];
  } finally {
    loading = false;
    clearInterval(sampler);
    await load.catch(() => undefined);
    await client.end().catch(() => undefined);
    await d.stop();
    await dropSlot(ctx.url, 'outage_slot');
    await broker.destroy();
  }
}

const mb = (bytes: number) => Math.round(bytes / 2 ** 20);
