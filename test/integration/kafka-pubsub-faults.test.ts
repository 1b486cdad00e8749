/** @services pg kafka pubsub */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { requireService } from '../support/require-service.ts';
import { PubSub } from '@google-cloud/pubsub';
import { decodeMessage } from '../../src/sinks/encode.ts';
import { runCli, waitStreaming } from '../support/daemon.ts';
import { testDatabase } from '../support/db.ts';
import { readCommitted } from '../support/kafka-read.ts';
import { Collector } from '../support/pubsub-read.ts';
import { createReferenceSlot, currentWalLsn, recvLogical } from '../support/recvlogical.ts';
import { setupWorkloadTables, startWorkload } from '../support/workload.ts';

/**
 * The daemon end to end with both brokered sinks: `extract-tasks --sink kafka --sink pubsub`, SIGKILLed
 * three times mid-stream under a workload. A read_committed Kafka reader must see every change exactly
 * once (the checkpoint rides in the Kafka transaction); Pub/Sub (at-least-once) every id at least once,
 * the extra deliveries are counted and reported.
 */

const TABLES = new Set(['public.wl_a', 'public.wl_b']);
for (const s of ['pg', 'kafka', 'pubsub'] as const) requireService(s);
const PROJECT = 'tagc-faults';

describe('extract-tasks --sink kafka --sink pubsub survives SIGKILL', () => {
  let db: { url: string; drop: () => Promise<void> };
  beforeAll(async () => {
    db = await testDatabase('kpfaults');
    await setupWorkloadTables(db.url);
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('Kafka: every change exactly once; Pub/Sub: every id at least once (duplicates reported)', async () => {
    const brokers = process.env.KAFKA_BROKERS!;
    const topic = `faults-${randomUUID().slice(0, 8)}`;
    const ps = new PubSub({ projectId: PROJECT });
    await ps.createTopic(topic);
    await ps.close();
    const collector = await new Collector(PROJECT).subscribe(topic, { ordering: false });
    const args = [
      'extract-tasks',
      '--pg-url',
      db.url,
      '--slot',
      'kp_slot',
      '--sink',
      'kafka',
      '--sink',
      'pubsub',
      '--kafka-brokers',
      brokers,
      '--kafka-replication-factor',
      '1',
      '--kafka-partitions',
      '3',
      '--topic',
      topic,
      '--project-id',
      PROJECT,
      '--serverPort',
      '0',
      '--batch-size',
      '100',
    ];
    let daemon = runCli(args);
    await waitStreaming(daemon, 60000);
    await createReferenceSlot(db.url, 'kp_ref');
    // Bounded: the slowest sink (Pub/Sub via pstest, ~2k events/s) paces the catch-up on a loaded CI machine.
    const load = startWorkload(db.url, { rowsPerTx: 10, pauseMs: 15, maxTx: 500 });
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 1500 + Math.random() * 1500));
      await daemon.kill('SIGKILL');
      daemon = runCli(args);
      await waitStreaming(daemon, 60000);
    }
    const txs = await load.stop();
    const end = await currentWalLsn(db.url);
    const expected = await recvLogical(db.url, 'kp_ref', end, TABLES);
    expect(txs).toBeGreaterThan(20);

    // let both sinks catch up, then stop cleanly
    const expectedIds = new Set(expected.map((e) => e.id));
    const deadline = Date.now() + 180000;
    let kafkaIds: string[] = [];
    for (;;) {
      const got = await readCommitted(brokers, topic, { quietMs: 1500 });
      kafkaIds = got.map((m) => decodeMessage(m.headers, m.value).id);
      const psIds = new Set(collector.received.map((m) => m.attributes.ce_id));
      const kafkaSet = new Set(kafkaIds);
      const done = expected.every((e) => kafkaSet.has(e.id) && psIds.has(e.id));
      if (done || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    const exit = await daemon.kill('SIGTERM');
    if (exit.code !== 0) console.log(daemon.stderr().slice(-3000));
    expect(exit.code).toBe(0);
    const psMessages = await collector.waitFor(Infinity, { quietMs: 2000, timeoutMs: 10000 });
    await collector.close();

    // Kafka, read_committed: exactly once
    const kafkaSet = new Set(kafkaIds);
    expect(kafkaIds.length - kafkaSet.size).toBe(0);
    expect(expected.filter((e) => !kafkaSet.has(e.id))).toEqual([]);
    expect(kafkaIds.filter((id) => !expectedIds.has(id))).toEqual([]);

    // Pub/Sub: at least once, extra deliveries counted
    const psIds = psMessages.map((m) => m.attributes.ce_id!);
    const psSet = new Set(psIds);
    expect(expected.filter((e) => !psSet.has(e.id))).toEqual([]);
    expect(psIds.filter((id) => !expectedIds.has(id))).toEqual([]);
    process.stderr.write(
      `kafka+pubsub faults: ${expected.length} changes in ${txs} transactions, 3 SIGKILLs; ` +
        `kafka ${kafkaIds.length} records (0 duplicates); pubsub ${psIds.length} deliveries, ` +
        `${psIds.length - psSet.size} duplicates\n`,
    );
  }, 300_000);
});
