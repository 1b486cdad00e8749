import {
  compatibilityPartitioner,
  ProduceAcks,
  type BaseOptions,
  type CompressionAlgorithmValue,
  type MessageToProduce,
  type Producer,
  type ProducerOptions,
} from '@platformatic/kafka';
import type { Logger } from '../../log.ts';
import type { Envelope } from '../encode.ts';
import type { CheckpointOrigin } from '../origin.ts';
import { hasKafkaError } from './errors.ts';

/** Messages go to the client as Buffers (no serializers). */
export type Msg = MessageToProduce<Buffer, Buffer, Buffer, Buffer>;
export type KafkaProducer = Producer<Buffer, Buffer, Buffer, Buffer>;
export type Transaction = Awaited<ReturnType<KafkaProducer['beginTransaction']>>;

/**
 * Upper bound of one Produce request's messages (approximate bytes). A request holds one record batch
 * per partition, and the broker refuses a batch over its `message.max.bytes` (1 MiB by default): a big
 * batch, all the more one whose events share a key, goes out as several requests.
 */
export const MAX_REQUEST_BYTES = 512 * 1024;

export interface KafkaSinkOptions {
  brokers: string[];
  slot: string;
  /**
   * Where the checkpoints come from (origin.ts): recorded in each checkpoint record, and the record's
   * key and the transactional id derive from it (checkpoint.ts). Unset: the slot-only forms.
   */
  origin?: CheckpointOrigin;
  topic: string;
  routes: Readonly<Record<string, string>>;
  /** Tables whose deletes are followed by a tombstone (config `tables.<t>.tombstones`). */
  tombstoneTables?: readonly string[];
  checkpointTopic: string;
  exactlyOnce: boolean;
  envelope: Envelope;
  partitions: number;
  replicationFactor: number;
  clientId: string;
  database: string;
  version: string;
  /** TLS / SASL and timeouts for every client. */
  connection?: Partial<BaseOptions>;
  logger?: Logger;
  /** Per request timeout, and the transaction timeout [15000]. */
  timeoutMs?: number;
  /** Attempts per request inside the client before a write throws [5]. */
  retries?: number;
  /**
   * Write record batches ourselves (records.ts) rather than through the client's per-message
   * send [true]; false is kept for comparison (bench) and as a way back.
   */
  ownRecordBatches?: boolean;
  /** Record batch compression [lz4]. */
  compression?: CompressionAlgorithmValue;
  /** Produce from a thread of the sink's own [true]; false: on the caller's. */
  thread?: boolean;
}

/**
 * The clients' pause before a retry. CONCURRENT_TRANSACTIONS is the coordinator still writing the
 * previous transaction's commit markers when the next one adds its partitions: a matter of
 * milliseconds, so retried after 1, 2, 4, 8, 16 ms rather than after the pause meant for a broker
 * that is down (with 500 ms, every back-to-back transaction of a steady stream waited half a second;
 * with 20 ms, the Java client's pause, the commit-to-ack median at 1k events/s was 26 ms, with 5 ms 14;
 * in a catch-up, back-to-back 2,000-event transactions spent 5.8-6.4 ms each adding partitions with
 * 5 ms, 2.7 ms with 1 ms, and the writer alone went from 115-129k to 159-169k events/s).
 * addAllPartitions keeps trying past the client's retries (see there).
 */
export function retryDelay(baseMs: number) {
  return (_client: unknown, _operation: string, attempt: number, _retries: number, err: unknown): number =>
    hasKafkaError(err, 'CONCURRENT_TRANSACTIONS') ? Math.min(baseMs, 2 ** Math.max(0, attempt - 1)) : baseMs;
}

/** Record batch compression of the sink's messages unless told otherwise. */
export const DEFAULT_KAFKA_COMPRESSION: CompressionAlgorithmValue = 'lz4';

/**
 * The sink's producer settings (the bench's "Kafka client alone" uses them too): idempotent, acks=all,
 * transactional when given an id. LZ4 by default: JSON events shrink several times, which costs less
 * CPU than handing the uncompressed bytes to the socket, here and in the broker.
 */
export function kafkaProducerOptions(
  base: BaseOptions,
  o: { transactionalId?: string; compression?: CompressionAlgorithmValue },
): ProducerOptions<Buffer, Buffer, Buffer, Buffer> {
  return {
    ...base,
    idempotent: true,
    acks: ProduceAcks.ALL,
    compression: o.compression ?? DEFAULT_KAFKA_COMPRESSION,
    ...(o.transactionalId ? { transactionalId: o.transactionalId } : {}),
    // @platformatic/kafka 2.12 sends InitProducerId v3+ with producerId 0 / epoch 0 unless told
    // otherwise, and the coordinator answers PRODUCER_FENCED to a restarted process whose
    // transactional id already has another producer id. -1/-1 is what a new producer must send.
    producerId: -1n,
    producerEpoch: -1,
    // Keyed messages the client places itself land where the Java client (and our own record
    // batches, records.ts partitionOf) put them: toPositive(murmur2) % n. The library's default takes
    // murmur2 as unsigned, which differs for about half the keys unless n is a power of two.
    partitioner: compatibilityPartitioner,
  };
}

/** Every client's connection settings. */
export function kafkaBaseOptions(o: KafkaSinkOptions, suffix: string): BaseOptions {
  return {
    clientId: `${o.clientId}-${suffix}`,
    bootstrapBrokers: o.brokers,
    timeout: o.timeoutMs ?? 15000,
    connectTimeout: 5000,
    retries: o.retries ?? 5,
    retryDelay: retryDelay(500),
    ...o.connection,
  };
}
