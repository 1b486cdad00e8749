/** @services pg kafka */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { decodeMessage } from '../../src/sinks/encode.ts';
import { runCli, waitStreaming } from '../support/daemon.ts';
import { testDatabase } from '../support/db.ts';
import { KafkaBroker } from '../support/kafka.ts';
import { readCommitted } from '../support/kafka-read.ts';
import { freePort } from '../support/ports.ts';
import { createReferenceSlot, currentWalLsn, recvLogical } from '../support/recvlogical.ts';

/**
 * The sink is blocked (its broker killed) for a minute while the server is busy, mostly with writes
 * we do not track: the replication stream pauses at the in-flight bound, memory and bookkeeping stay
 * bounded, and once the broker is back a read_committed reader sees every change exactly once. A
 * private broker: stopping the shared one would disturb other test files.
 */
const TABLES = new Set(['public.wl_a']);
const OUTAGE_MS = Number(process.env.TAG_CONNECTOR_OUTAGE_MS ?? 60_000);
const MAX_IN_FLIGHT_EVENTS = 2000;
/** Each tracked row's note: 2 KiB, so the tracked volume written during the outage dwarfs the bound. */
const NOTE_BYTES = 2048;
/**
 * How much the daemon's RSS may grow over its level before the outage. The writes committed during
 * the outage are asserted to be at least twice this, so a daemon buffering them would fail.
 */
const RSS_GROWTH_BOUND_MB = 48;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function rssMb(pid: number): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = /VmRSS:\s+(\d+)/.exec(status)?.[1];
    return kb === undefined ? undefined : Number(kb) / 1024;
  } catch {
    return undefined;
  }
}

/** A writer looping `statement` (in a transaction of one statement) until stopped; counts rows. */
function writer(url: string, statement: string, pauseMs: number) {
  let running = true;
  let rows = 0;
  const done = (async () => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    while (running) {
      const r = await c.query(statement);
      rows += r.rowCount ?? 0;
      if (pauseMs) await sleep(pauseMs);
    }
    await c.end();
  })();
  return {
    rows: () => rows,
    stop: async () => {
      running = false;
      await done;
      return rows;
    },
  };
}

describe('extract-tasks --sink kafka while the broker is down under a busy server', () => {
  let db: { url: string; drop: () => Promise<void> };
  const broker = new KafkaBroker();
  beforeAll(async () => {
    db = await testDatabase('kafkaout');
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    await c.query(`CREATE TABLE wl_a (id bigserial PRIMARY KEY, n int NOT NULL, note text);
                   CREATE SCHEMA noise; CREATE TABLE noise.hits (id bigserial PRIMARY KEY, at timestamptz DEFAULT now())`);
    await c.end();
    await broker.start();
  }, 120_000);
  afterAll(async () => {
    await broker.destroy();
    await db?.drop();
  });

  it(`bounded memory and bookkeeping across a ${OUTAGE_MS / 1000} s outage, then every change exactly once`, async () => {
    const topic = `outage-${randomUUID().slice(0, 8)}`;
    const port = await freePort();
    const daemon = runCli([
      'extract-tasks',
      '--pg-url',
      db.url,
      '--slot',
      'out_slot',
      '--sink',
      'kafka',
      '--kafka-brokers',
      broker.brokers,
      '--kafka-replication-factor',
      '1',
      '--topic',
      topic,
      '--serverPort',
      String(port),
      '--metrics-public',
      '--max-in-flight-events',
      String(MAX_IN_FLIGHT_EVENTS),
      '--sink-retry-limit',
      '1000',
    ]);
    const api = `http://127.0.0.1:${port}`;
    await waitStreaming(daemon, 60_000);
    await createReferenceSlot(db.url, 'out_ref');
    const tracked = writer(
      db.url,
      `INSERT INTO wl_a (n, note) SELECT g, repeat(md5(random()::text), ${NOTE_BYTES / 32}) FROM generate_series(1, 20) g`,
      20,
    );
    // Mostly untracked: one-row transactions in a schema the daemon does not watch, as fast as the
    // server takes them. Each still reaches the daemon as an (empty) BEGIN/COMMIT.
    const noise = [1, 2].map(() => writer(db.url, `INSERT INTO noise.hits DEFAULT VALUES`, 0));
    await sleep(2000);
    const before: number[] = [];
    for (let i = 0; i < 4; i++) {
      before.push(rssMb(daemon.proc.pid!) ?? NaN);
      await sleep(250);
    }
    const baseline = Math.max(...before);

    await broker.stop('kill');
    const trackedAtBlock = tracked.rows();
    const noiseAtBlock = noise.reduce((n, w) => n + w.rows(), 0);
    const samples: { rss: number; paused: number; events: number; transactions: number }[] = [];
    // At least OUTAGE_MS, and on until the tracked writes alone are twice the RSS bound (a busy CI
    // machine writes slower), so that the bound below always means something; capped at 3x.
    const blockedAt = Date.now();
    const enoughWritten = () =>
      (tracked.rows() - trackedAtBlock) * NOTE_BYTES > 2.5 * RSS_GROWTH_BOUND_MB * 2 ** 20;
    while (
      Date.now() < blockedAt + OUTAGE_MS ||
      (!enoughWritten() && Date.now() < blockedAt + 3 * OUTAGE_MS)
    ) {
      await sleep(500);
      const rss = rssMb(daemon.proc.pid!);
      const metrics = await (await fetch(`${api}/metrics`)).text();
      const paused = Number(/^tag_connector_replication_paused (\d+)/m.exec(metrics)?.[1] ?? NaN);
      const info = (await (await fetch(`${api}/info`)).json()) as {
        inFlight: { events: number; transactions: number };
      };
      if (rss !== undefined) samples.push({ rss, paused, ...info.inFlight });
    }
    const trackedInOutage = tracked.rows() - trackedAtBlock;
    const noiseInOutage = noise.reduce((n, w) => n + w.rows(), 0) - noiseAtBlock;
    await broker.start();
    await sleep(2000);
    const trackedRows = await tracked.stop();
    for (const w of noise) await w.stop();

    const expected = await recvLogical(db.url, 'out_ref', await currentWalLsn(db.url), TABLES);
    const deadline = Date.now() + 240_000;
    let ids: string[] = [];
    for (;;) {
      const got = await readCommitted(broker.brokers, topic, { quietMs: 1500, timeoutMs: 180_000 });
      ids = got.map((m) => decodeMessage(m.headers, m.value).id);
      if (ids.length >= expected.length || Date.now() > deadline) break;
      await sleep(1000);
    }
    const exit = await daemon.kill('SIGTERM');
    if (exit.code !== 0) console.log(daemon.stderr().slice(-3000));
    expect(exit.code).toBe(0);
    expect(daemon.stderr()).toMatch(/retrying/);

    // The samples are real (an empty list would make Math.max -Infinity and pass anything).
    expect(samples.length).toBeGreaterThanOrEqual(Math.floor(OUTAGE_MS / 1000));
    const peak = Math.max(...samples.map((s) => s.rss));
    const writtenMb = (trackedInOutage * NOTE_BYTES) / 2 ** 20;
    // The bound means something: buffering what was written during the outage would break it.
    expect(writtenMb).toBeGreaterThan(2 * RSS_GROWTH_BOUND_MB);
    expect(peak - baseline).toBeLessThan(RSS_GROWTH_BOUND_MB);
    // Paused while blocked: from the first paused sample to the end of the outage, and at its end.
    const firstPaused = samples.findIndex((s) => s.paused === 1);
    expect(firstPaused).toBeGreaterThanOrEqual(0);
    expect(samples.slice(firstPaused).every((s) => s.paused === 1)).toBe(true);
    // Bookkeeping: the committed transactions awaiting the sink never outnumber their events (runs
    // of untracked transactions collapse into one position), although far more of them committed.
    expect(Math.max(...samples.map((s) => s.events))).toBeLessThanOrEqual(MAX_IN_FLIGHT_EVENTS + 600);
    expect(Math.max(...samples.map((s) => s.transactions - s.events))).toBeLessThanOrEqual(1);
    expect(noiseInOutage).toBeGreaterThan(10 * MAX_IN_FLIGHT_EVENTS);

    // Full drain, exactly once.
    const set = new Set(ids);
    expect(ids.length - set.size).toBe(0);
    expect(expected.filter((e) => !set.has(e.id))).toEqual([]);
    expect(expected.length).toBe(trackedRows);
    process.stderr.write(
      `kafka outage: ${OUTAGE_MS} ms; ${trackedInOutage} tracked rows (${Math.round(writtenMb)} MB) and ` +
        `${noiseInOutage} untracked transactions committed meanwhile; RSS ${Math.round(baseline)} MB before, ` +
        `peak ${Math.round(peak)} MB (bound +${RSS_GROWTH_BOUND_MB}); max pending transactions ` +
        `${Math.max(...samples.map((s) => s.transactions))}; ${ids.length} events drained exactly once\n`,
    );
  }, 600_000);
});
