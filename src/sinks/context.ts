import type { Config } from '../config/index.ts';
import type { Logger } from '../log.ts';
import type { DurableFs } from './durable-fs.ts';
import type { AvroColumnSource } from './avro/encoder.ts';
import type { CheckpointOrigin } from './origin.ts';

/** What a sink may need besides the config. */
export interface SinkContext {
  config: Config;
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
