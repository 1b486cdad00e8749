import type { Config } from '../config/index.ts';
import type { Logger } from '../log.ts';
import type { DurableFs } from './durable-fs.ts';
import type { AvroColumnSource } from './avro/encoder.ts';
import type { CheckpointOrigin } from './origin.ts';

/** What the file sink reads of the config. */
export const FILE_SINK_KEYS = ['filePath'] as const;
/** TLS and SASL for every Kafka client (the sink, the dead-letter producer, `tail`). */
export const KAFKA_CONNECTION_KEYS = [
  'kafkaTls',
  'kafkaCaFile',
  'kafkaSaslMechanism',
  'kafkaSaslUsername',
  'kafkaSaslPassword',
] as const;
/** What the Kafka sink reads of the config. */
export const KAFKA_SINK_KEYS = [
  ...KAFKA_CONNECTION_KEYS,
  'kafkaBrokers',
  'slot',
  'topic',
  'topicRoutes',
  'tableRules',
  'kafkaCheckpointTopic',
  'kafkaExactlyOnce',
  'envelope',
  'kafkaPartitions',
  'kafkaReplicationFactor',
  'kafkaClientId',
  'kafkaCompression',
  'kafkaThread',
  'schemaRegistry',
] as const;
/** What the Pub/Sub sink reads of the config. */
export const PUBSUB_SINK_KEYS = [
  'projectId',
  'serviceAccount',
  'topic',
  'topicRoutes',
  'tableRules',
  'envelope',
  'pubsubOrderingBuckets',
] as const;
/** Every sink's keys: the slice a composition root hands to createSink. */
export const SINK_CONFIG_KEYS = [
  ...new Set([...FILE_SINK_KEYS, ...KAFKA_SINK_KEYS, ...PUBSUB_SINK_KEYS]),
] as (typeof FILE_SINK_KEYS | typeof KAFKA_SINK_KEYS | typeof PUBSUB_SINK_KEYS)[number][];

export type KafkaConnectionConfig = Pick<Config, (typeof KAFKA_CONNECTION_KEYS)[number]>;
export type KafkaSinkConfig = Pick<Config, (typeof KAFKA_SINK_KEYS)[number]>;
export type PubSubSinkConfig = Pick<Config, (typeof PUBSUB_SINK_KEYS)[number]>;
export type SinkConfig = Pick<Config, (typeof SINK_CONFIG_KEYS)[number]>;

/** What a sink may need: its slice of the config, and the facts of the daemon that builds it. */
export interface SinkContext<C = SinkConfig> {
  config: C;
  logger: Logger;
  /** Database being watched (event source, Debezium `source.db`). */
  database: string;
  version: string;
  /** Where the daemon's checkpoints come from (Kafka derives its checkpoint key and transactional id). */
  origin?: CheckpointOrigin;
  /** The file system the file sink writes through (tests pass a faulty one); the real one if unset. */
  fs?: DurableFs;
  /** A table's governed columns now, for Avro schemas (--schema-registry); extract-tasks gives it. */
  tableColumns?: AvroColumnSource;
}
