import type { ClusterMetadata, MessageRecord } from '@platformatic/kafka';
import { hasKafkaError } from './errors.ts';
import type { KafkaProducer, Msg, Transaction } from './options.ts';

/**
 * How long CONCURRENT_TRANSACTIONS is retried beyond the client's own retries (which give up after
 * about 31 ms): a busy coordinator can take longer to finish the previous commit, or, at a producer's
 * first InitProducerId, to abort what a fenced instance left open. Failing for it would cost a new
 * producer and a checkpoint read, or at start the whole sink.
 */
const CONCURRENT_TRANSACTIONS_PATIENCE_MS = 5000;

/** The coordinator is busy or moving: worth waiting for at a producer's first InitProducerId. */
const COORDINATOR_BUSY = [
  'CONCURRENT_TRANSACTIONS',
  'COORDINATOR_LOAD_IN_PROGRESS',
  'COORDINATOR_NOT_AVAILABLE',
  'NOT_COORDINATOR',
];

/** Whether a producer's first beginTransaction failed only because the coordinator is busy. */
export function coordinatorBusy(err: unknown): boolean {
  return COORDINATOR_BUSY.some((id) => hasKafkaError(err, id));
}

/** How long open() keeps making a fresh producer while the coordinator is busy. */
export const OPEN_PATIENCE_MS = 30_000;

/** Runs `op` again while it fails with CONCURRENT_TRANSACTIONS, for at most `patienceMs`. */
async function patiently<T>(op: () => Promise<T>, patienceMs: number): Promise<T> {
  const deadline = Date.now() + patienceMs;
  for (;;) {
    try {
      return await op();
    } catch (err) {
      if (!hasKafkaError(err, 'CONCURRENT_TRANSACTIONS') || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/**
 * Adds every partition of `topics` to the transaction. @platformatic/kafka merges concurrent
 * AddPartitionsToTxn calls of one transaction whatever their partitions, so concurrent sends adding
 * partitions each on their own would produce to partitions never added (TRANSACTION_ABORTABLE): with
 * every partition added first, a transaction's requests can go out back to back. (Partitions already
 * in the transaction cost nothing.)
 */
export async function addAllPartitions(
  producer: KafkaProducer,
  tx: Transaction,
  topics: Iterable<string>,
  known?: ClusterMetadata,
): Promise<void> {
  const names = [...new Set(topics)];
  const metadata = known ?? (await producer.metadata({ topics: names }));
  const partitions: MessageRecord[] = [];
  for (const topic of names) {
    const n = metadata.topics.get(topic)?.partitionsCount ?? 0;
    for (let partition = 0; partition < n; partition++) partitions.push({ topic, partition, value: EMPTY });
  }
  await patiently(() => tx.addPartitions(metadata, partitions), CONCURRENT_TRANSACTIONS_PATIENCE_MS);
}

/**
 * Sends Produce requests (in `tx` if given) back to back without waiting for each other's acks: the
 * client queues them in order on the broker connection (one in flight, so sequence numbers stay in
 * order) while the broker works on the previous one.
 */
export async function sendAll(producer: KafkaProducer, requests: Msg[][], tx?: Transaction): Promise<void> {
  if (tx)
    await addAllPartitions(
      producer,
      tx,
      requests.flatMap((r) => r.map((m) => m.topic)),
    );
  await settleAll(requests.map((messages) => (tx ?? producer).send({ messages })));
}

/** Waits for every promise, then throws the first failure. */
export async function settleAll(all: Promise<unknown>[]): Promise<void> {
  for (const r of await Promise.allSettled(all)) if (r.status === 'rejected') throw r.reason;
}
export const EMPTY = Buffer.alloc(0);
