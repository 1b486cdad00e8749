import type { KafkaRecord, RecordsBatch } from '@platformatic/kafka';

/** Batch attribute bits (Kafka record batch v2). */
const IS_TRANSACTIONAL = 1 << 4;
const IS_CONTROL = 1 << 5;

export interface AbortedTransaction {
  producerId: bigint;
  firstOffset: bigint;
}

export interface CommittedRecord {
  offset: bigint;
  record: KafkaRecord;
}

/**
 * The records a read_committed consumer may see in one fetched partition: Kafka returns aborted
 * transactional batches too, with the list of aborted transactions, and the client must drop them.
 * This is the Java client's algorithm: a producer's batches are dropped from the first offset of one of
 * its aborted transactions up to its ABORT marker; control batches are never records.
 *
 * We do it ourselves because @platformatic/kafka 2.12's own filter keeps one aborted range per producer
 * id: of several aborted transactions of one producer in a fetch only the last one is dropped, and an
 * ABORT marker with no aborted-transaction entry stretches the range over committed transactions (so
 * CommittedReader sends its Fetch past that filter, fetch.ts; test/integration/kafka-read-committed.test.ts).
 */
export function committedRecords(
  batches: readonly RecordsBatch[],
  aborted: readonly AbortedTransaction[] | null | undefined,
): CommittedRecord[] {
  const pending = [...(aborted ?? [])].sort((a, b) =>
    a.firstOffset < b.firstOffset ? -1 : a.firstOffset > b.firstOffset ? 1 : 0,
  );
  const abortedProducers = new Set<bigint>();
  const out: CommittedRecord[] = [];
  for (const batch of batches) {
    const lastOffset = batch.firstOffset + BigInt(batch.lastOffsetDelta);
    while (pending.length && pending[0]!.firstOffset <= lastOffset) {
      abortedProducers.add(pending.shift()!.producerId);
    }
    if (batch.attributes & IS_CONTROL) {
      // control record key: version int16, type int16 (0 = ABORT, 1 = COMMIT)
      const key = batch.records[0]?.key;
      if (key && key.length >= 4 && key.readInt16BE(2) === 0) abortedProducers.delete(batch.producerId);
      continue;
    }
    if (batch.attributes & IS_TRANSACTIONAL && abortedProducers.has(batch.producerId)) continue;
    for (const record of batch.records) {
      out.push({ offset: batch.firstOffset + BigInt(record.offsetDelta), record });
    }
  }
  return out;
}
