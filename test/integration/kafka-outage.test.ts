import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { decodeMessage } from '../../src/sinks/encode.ts';
import { runCli, waitStreaming } from '../support/daemon.ts';
import { testDatabase } from '../support/db.ts';
import { KafkaBroker, kafkaHome } from '../support/kafka.ts';
import { readCommitted } from '../support/kafka-read.ts';
import { createReferenceSlot, currentWalLsn, recvLogical } from '../support/recvlogical.ts';
import { setupWorkloadTables, startWorkload } from '../support/workload.ts';
import { existsSync, readFileSync } from 'node:fs';

/**
 * The broker goes away under load and comes back: the daemon retries, the replication stream pauses
 * at the in-flight bound (memory stays bounded), and afterwards a read_committed reader sees every
 * change exactly once. A private broker: stopping the shared one would disturb other test files.
 */
const TABLES = new Set(['public.wl_a', 'public.wl_b']);
const OUTAGE_MS = Number(process.env.TAG_CONNECTOR_OUTAGE_MS ?? 20_000);
const d = process.env.PGURL && existsSync(kafkaHome()) ? describe : describe.skip;

d('extract-tasks --sink kafka while the broker is down', () => {
  let db: { url: string; drop: () => Promise<void> };
  const broker = new KafkaBroker();
  beforeAll(async () => {
    db = await testDatabase('kafkaout');
    await setupWorkloadTables(db.url);
    await broker.start();
  }, 120_000);
  afterAll(async () => {
    await broker.destroy();
    await db?.drop();
  });

  it(`no loss, no duplicate, bounded memory across a ${OUTAGE_MS / 1000} s outage`, async () => {
    const topic = `outage-${randomUUID().slice(0, 8)}`;
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
      '0',
      '--max-in-flight-events',
      '2000',
      '--sink-retry-limit',
      '100',
    ]);
    await waitStreaming(daemon, 60_000);
    await createReferenceSlot(db.url, 'out_ref');
    const load = startWorkload(db.url, { rowsPerTx: 10, pauseMs: 10 });
    await new Promise((r) => setTimeout(r, 2000));
    await broker.stop('kill');
    const rss: number[] = [];
    const sampler = setInterval(() => {
      try {
        const status = readFileSync(`/proc/${daemon.proc.pid}/status`, 'utf8');
        rss.push(Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024);
      } catch {
        /* gone */
      }
    }, 500);
    await new Promise((r) => setTimeout(r, OUTAGE_MS));
    await broker.start();
    await new Promise((r) => setTimeout(r, 2000));
    const txs = await load.stop();
    clearInterval(sampler);
    const expected = await recvLogical(db.url, 'out_ref', await currentWalLsn(db.url), TABLES);
    const deadline = Date.now() + 180_000;
    let ids: string[] = [];
    for (;;) {
      const got = await readCommitted(broker.brokers, topic, { quietMs: 1500 });
      ids = got.map((m) => decodeMessage(m.headers, m.value).id);
      if (ids.length >= expected.length || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    const exit = await daemon.kill('SIGTERM');
    if (exit.code !== 0) console.log(daemon.stderr().slice(-3000));
    expect(exit.code).toBe(0);
    expect(daemon.stderr()).toMatch(/retrying/);
    const set = new Set(ids);
    expect(ids.length - set.size).toBe(0);
    expect(expected.filter((e) => !set.has(e.id))).toEqual([]);
    expect(Math.max(...rss)).toBeLessThan(400);
    process.stderr.write(
      `kafka outage: ${OUTAGE_MS} ms, ${expected.length} changes in ${txs} transactions, ` +
        `peak RSS during the outage ${Math.round(Math.max(...rss))} MB, delivered exactly once\n`,
    );
  }, 400_000);
});
