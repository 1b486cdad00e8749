/**
 * The Kafka sink (@platformatic/kafka). acks=all, idempotent; message key = the event's partition key,
 * so one entity's events stay in one partition, in commit order.
 *
 * Exactly-once mode (default): each `write(batch)` is one Kafka transaction holding the events and this
 * sink's checkpoint, a record keyed by the slot name in a compacted checkpoint topic. The transactional
 * id is derived from the slot, so a restarted daemon fences its predecessor and the coordinator aborts
 * whatever that one left open. `open()` reads the checkpoint back (read_committed), the runner skips
 * events at or below it: a read_committed consumer sees every change once, across crashes, with no
 * other store. After a failed write (broker gone, commit outcome unknown) the producer is dropped and
 * the checkpoint read again before the retry, so a commit that did succeed is never repeated.
 *
 * Non-transactional mode (`--kafka-exactly-once false`): idempotent sends only, at-least-once, the
 * runner keeps the checkpoint in the state store.
 *
 * Throughput (bench: catch-up, "daemon → kafka sink" against "Kafka client alone"): the producer side
 * (KafkaWriter) runs in a thread of its own, the main thread only routes events and hands their JSON
 * over; a transaction's Produce requests go out back to back (each at most MAX_REQUEST_BYTES), LZ4
 * compressed; the structured envelope's headers are read from the head of the event's JSON (no parse)
 * and handed to the client as one encoded block (HEADER_BLOCK); CONCURRENT_TRANSACTIONS is retried
 * after milliseconds, not after the outage back-off.
 */

/*
 * The files: sink.ts (KafkaSink, createKafkaSink); thread.ts (the sink's thread, and its entry);
 * writer.ts (KafkaWriter: topics, producer, transactions, checkpoint) with transactions.ts; wire-batch.ts
 * (a batch as the thread takes it); encoder.ts and headers.ts (messages and their CloudEvents headers);
 * records.ts, record-parts.ts and produce.ts (record batches and Produce requests of our own);
 * checkpoint.ts, reader.ts and txn.ts (the checkpoint, read_committed reads); options.ts, errors.ts.
 */

export { createKafkaSink, KafkaSink, kafkaConnectionOptions } from './sink.ts';
export { KafkaWriter } from './writer.ts';
export { prewarmKafkaThread } from './thread.ts';
export { toWireBatch, WireBufferPool, type WireBatch } from './wire-batch.ts';
export { KafkaMessageEncoder, type EncoderEvent } from './encoder.ts';
export { ATTRS, headerBlocks, scanAttributes } from './headers.ts';
export {
  checkpointKeyFor,
  parseStoredCheckpoint,
  resetValue,
  type CheckpointScope,
  checkpointValue,
  parseCheckpointValue,
  readKafkaCheckpoint,
  transactionalIdFor,
  type KafkaCheckpointValue,
} from './checkpoint.ts';
export { addAllPartitions, sendAll } from './transactions.ts';
export {
  DEFAULT_KAFKA_COMPRESSION,
  kafkaProducerOptions,
  MAX_REQUEST_BYTES,
  retryDelay,
  type KafkaSinkOptions,
} from './options.ts';
export { KafkaSinkError } from './errors.ts';
export { CommittedReader, type ReadRecord } from './reader.ts';
export { committedRecords, type AbortedTransaction, type CommittedRecord } from './txn.ts';
export {
  murmur2,
  nextSequence,
  partitionOf,
  recordBatch,
  recordBodySize,
  varIntSize,
  writeRecord,
  type RecordBatch,
} from './records.ts';
export { Sequences, type PartitionBatch } from './produce.ts';
