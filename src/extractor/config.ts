import { PG_CONNECTION_KEYS, type Config } from '../config/index.ts';
import { SINK_CONFIG_KEYS } from '../sinks/index.ts';

/**
 * What the extractor reads of the config: PostgreSQL, the slot and its plugin, which tables and
 * roles, flow control, the sinks' slice (it builds them), backfill and dead letters. Not the API's
 * listen address or auth, not start-job's workspace client or its secrets.
 */
export const EXTRACTOR_CONFIG_KEYS = [
  ...PG_CONNECTION_KEYS,
  ...SINK_CONFIG_KEYS,
  'slot',
  'plugin',
  'publication',
  'stateSchema',
  'preset',
  'roles',
  'schemas',
  'tables',
  'excludeTables',
  'tableRules',
  'maskKey',
  'sink',
  'sinkRetryLimit',
  'deadLetter',
  'batchSize',
  'maxInFlightBytes',
  'maxInFlightEvents',
  'statusIntervalMs',
  'heartbeatIntervalMs',
  'shutdownTimeoutMs',
  'startupWaitMs',
  'lagWarnBytes',
  'resetSinkCheckpoints',
  'snapshotMode',
  'backfillAllowCtid',
  'backfillChunkSize',
  'backfillChunkMs',
  'backfillParallel',
  'streamRetentionBytes',
  'streamRetentionDir',
] as const;

export type ExtractorConfig = Pick<Config, (typeof EXTRACTOR_CONFIG_KEYS)[number]>;
