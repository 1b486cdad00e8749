import type { Config } from '../config/index.ts';
import type { Logger } from '../log.ts';

/** What a sink may need besides the config. */
export interface SinkContext {
  config: Config;
  logger: Logger;
  /** Database being watched (event source, Debezium `source.db`). */
  database: string;
  version: string;
}
