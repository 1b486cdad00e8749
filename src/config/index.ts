export { configSchema, SINK_KINDS, PLUGINS, SECRET_KEYS, type Config, type SinkKind } from './schema.ts';
export { loadConfig, envName, ENV_PREFIX, type LoadOptions } from './load.ts';
export { ConfigError } from './errors.ts';
export { redactConfig, REDACTED, LOG_REDACT_PATHS } from './redact.ts';
export { pgClientConfig, databaseName, PG_CONNECTION_KEYS, type PgConnectionConfig } from './pg.ts';
export { sliceConfig } from './slice.ts';
