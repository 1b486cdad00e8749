/** @services kafka */
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { Admin, Producer, stringSerializers } from '@platformatic/kafka';
import { CommittedReader } from '../../src/sinks/kafka/index.ts';
import { kafkaHome } from '../support/kafka.ts';
import { requireService } from '../support/require-service.ts';

/**
 * CommittedReader (read_committed by our own filter, src/sinks/kafka/txn.ts) against the Apache Kafka
 * Java consumer (isolation.level=read_committed) on logs that one transactional id wrote: aborted and
 * committed transactions of one producer id, and ABORT markers of transactions that wrote nothing to
 * the partition (the partition was added to the transaction, then the process died before its
 * Produce request landed: the broker writes the marker but has no aborted-transaction entry for it).
 * The 30-minute soak (docs/soak.md) lost a third of its Kafka events to exactly this.
 */

const BROKERS = requireService('kafka');
const JAVA_READER = new URL('../support/kafka/JavaReader.java', import.meta.url).pathname;

/** The values the Java client reads read_committed, in offset order (one partition). */
function javaRead(topic: string): string[] {
  const r = spawnSync(
    'java',
    ['-cp', `${join(kafkaHome(), 'libs')}/*`, JAVA_READER, BROKERS, topic, '1000000', '8000'],
    { encoding: 'utf8', maxBuffer: 64 << 20 },
  );
  if (r.status !== 0) throw new Error(`java failed (${r.status}): ${r.stderr}`);
  return r.stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { offset: number; value: string })
    .sort((a, b) => a.offset - b.offset)
    .map((m) => m.value);
}

async function ourRead(topic: string): Promise<string[]> {
  const reader = new CommittedReader({ clientId: 'tagc-test-rc', bootstrapBrokers: [BROKERS] }, topic);
  const out: string[] = [];
  try {
    expect(await reader.init('beginning')).toBe(true);
    await reader.readToEnd((records) => out.push(...records.map((r) => r.value ?? '')));
  } finally {
    await reader.close();
  }
  return out;
}

type Step = { commit: boolean; values: string[] };

/** One transactional id, one partition: each step one transaction; no values = partition added only. */
async function writeTransactions(topic: string, steps: Step[]): Promise<string[]> {
  const admin = new Admin({ clientId: 'tagc-test-rc', bootstrapBrokers: [BROKERS] });
  await admin.createTopics({ topics: [topic], partitions: 1, replicas: 1 });
  await admin.close();
  const producer = new Producer<string, string, string, string>({
    clientId: 'tagc-test-rc',
    bootstrapBrokers: [BROKERS],
    idempotent: true,
    transactionalId: `rc-${topic}`,
    serializers: stringSerializers,
  });
  const committed: string[] = [];
  try {
    const metadata = await producer.metadata({ topics: [topic] });
    for (const step of steps) {
      const tx = await producer.beginTransaction();
      if (step.values.length) {
        await tx.send({ messages: step.values.map((value) => ({ topic, partition: 0, value })) });
      } else {
        await tx.addPartitions(metadata, [{ topic, partition: 0, value: Buffer.alloc(0) }]);
      }
      if (step.commit) {
        await tx.commit();
        committed.push(...step.values);
      } else {
        await tx.abort();
      }
    }
  } finally {
    await producer.close();
  }
  return committed;
}

describe('CommittedReader against the Java read_committed consumer (real broker)', () => {
  it('an ABORT marker with no aborted-transaction entry (partition added, nothing written) hides nothing', async () => {
    const topic = `t-rc-bare-${randomUUID().slice(0, 8)}`;
    const committed = await writeTransactions(topic, [
      { commit: false, values: ['a1', 'a2', 'a3'] },
      { commit: true, values: ['c1', 'c2', 'c3'] },
      { commit: false, values: [] },
      { commit: true, values: ['c4', 'c5'] },
    ]);
    const java = javaRead(topic);
    expect(java).toEqual(committed);
    expect(await ourRead(topic)).toEqual(java);
  }, 60_000);
});
