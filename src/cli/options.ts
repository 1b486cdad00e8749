import type { Argv, Options } from 'yargs';
import { PLUGINS, SINK_KINDS } from '../config/schema.ts';

/**
 * Flags shared by the daemons. Values are read as strings and validated by the config schema, so a bad
 * value is reported once, the same way, whether it came from a flag, the environment or a file.
 * Defaults are documented here but applied by the schema: a secret never has one.
 */
export const connectionOptions: Record<string, Options> = {
  'pg-url': {
    type: 'string',
    group: 'PostgreSQL:',
    describe: 'Connection URL (postgres://user@host:port/db); overrides the discrete flags',
  },
  db: { type: 'string', group: 'PostgreSQL:', describe: 'Database name' },
  pgHost: { type: 'string', group: 'PostgreSQL:', describe: 'Host' },
  pgPort: { type: 'string', group: 'PostgreSQL:', describe: 'Port [5432]' },
  user: { type: 'string', group: 'PostgreSQL:', describe: 'Role (needs REPLICATION for extract-tasks)' },
  password: {
    type: 'string',
    group: 'PostgreSQL:',
    describe: 'Password (no default; prefer TAG_CONNECTOR_PASSWORD_FILE)',
  },
};

export const serverOptions: Record<string, Options> = {
  serverHost: { type: 'string', group: 'HTTP API:', describe: 'Listen address [127.0.0.1]' },
  serverPort: { type: 'string', group: 'HTTP API:', describe: 'Listen port, 0 for any free port [8080]' },
  'insecure-listen': {
    type: 'boolean',
    group: 'HTTP API:',
    describe: 'Allow a non-loopback listen address without auth',
  },
  'auth-tokens-file': {
    type: 'string',
    group: 'HTTP API:',
    describe: 'File of static bearer tokens (one per line, or YAML with scopes)',
  },
};

export const jobOptions: Record<string, Options> = {
  oidc: { type: 'string', group: 'Workspace API:', describe: 'OIDC issuer URL (or token endpoint)' },
  'client-id': { type: 'string', group: 'Workspace API:', describe: 'OIDC client id' },
  'client-secret': {
    type: 'string',
    group: 'Workspace API:',
    describe: 'OIDC client secret (no default; prefer TAG_CONNECTOR_CLIENT_SECRET_FILE)',
  },
  ws: { type: 'string', group: 'Workspace API:', describe: 'Workspace GraphQL endpoint URL' },
  'mongo-addr': { type: 'string', group: 'Workspace API:', describe: 'MongoDB URL of the snapshot store' },
};

export const sinkOptions: Record<string, Options> = {
  sink: {
    type: 'string',
    array: true,
    group: 'Sinks:',
    describe: `Where events go, repeatable: ${SINK_KINDS.join('|')} [stdout]`,
  },
  'file-path': {
    type: 'string',
    group: 'Sinks:',
    describe: 'NDJSON file of the file sink [tag-connector-events.ndjson]',
  },
  'kafka-brokers': {
    type: 'string',
    group: 'Sinks:',
    describe: 'Kafka bootstrap brokers, comma-separated host:port',
  },
  topic: { type: 'string', group: 'Sinks:', describe: 'Kafka / Pub/Sub topic' },
  'project-id': { type: 'string', group: 'Sinks:', describe: 'Google Cloud project of the Pub/Sub topic' },
  'service-account': {
    type: 'string',
    group: 'Sinks:',
    describe: 'Service-account key file for Pub/Sub (default: ADC)',
  },
  envelope: {
    type: 'string',
    group: 'Sinks:',
    describe: 'Event encoding: structured|binary|debezium [structured]',
  },
};

export const replicationOptions: Record<string, Options> = {
  slot: {
    type: 'string',
    group: 'Replication:',
    describe: 'Replication slot (created if missing, never dropped) [tag_connector]',
  },
  publication: {
    type: 'string',
    group: 'Replication:',
    describe: 'Publication for pgoutput [tag_connector]',
  },
  plugin: {
    type: 'string',
    group: 'Replication:',
    describe: `Output plugin: ${PLUGINS.join('|')} [wal2json]`,
  },
  schemas: {
    type: 'string',
    group: 'Replication:',
    describe: 'Schemas whose tables are tracked, comma-separated [public]',
  },
  tables: {
    type: 'string',
    group: 'Replication:',
    describe: 'Only these tables (schema.table, comma-separated)',
  },
  'exclude-tables': {
    type: 'string',
    group: 'Replication:',
    describe: 'Tables never tracked (schema.table, comma-separated)',
  },
  preset: { type: 'string', group: 'Replication:', describe: 'Role mapping preset: etl|pgboss|none [etl]' },
  'state-schema': {
    type: 'string',
    group: 'Replication:',
    describe: 'Schema of our own state (checkpoints) [tag_connector]',
  },
};

export const commonOptions: Record<string, Options> = {
  config: { type: 'string', describe: 'YAML config file (flags > env TAG_CONNECTOR_* > file > defaults)' },
  'log-level': { type: 'string', describe: 'fatal|error|warn|info|debug|trace|silent [info]' },
};

export function withOptions<T>(y: Argv<T>, ...groups: Record<string, Options>[]): Argv<T> {
  let out = y;
  for (const group of groups) out = out.options(group) as Argv<T>;
  return out;
}

/** The original flags: both daemons accept all of them so existing deployments keep working. */
export const allDaemonOptions = [
  connectionOptions,
  serverOptions,
  jobOptions,
  sinkOptions,
  replicationOptions,
  commonOptions,
];
