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
    group: 'HTTP API auth:',
    describe: 'Serve a non-loopback address without auth (else that is refused, exit 2)',
  },
  'stream-retention-bytes': {
    type: 'string',
    group: 'HTTP API:',
    describe: 'Disk kept for Stream resume (fromLsn / Last-Event-ID), 0 = off [256 MiB]',
  },
  'stream-retention-dir': {
    type: 'string',
    group: 'HTTP API:',
    describe: 'Where that retention lives [~/.local/state/tag-connector/stream/<db>-<slot>]',
  },
  'stream-client-buffer-bytes': {
    type: 'string',
    group: 'HTTP API:',
    describe: 'Bytes buffered towards one Stream client before it is cut off [8 MiB]',
  },
  'auth-tokens-file': {
    type: 'string',
    group: 'HTTP API auth:',
    describe:
      'File of static bearer tokens: one per line, or a YAML list of {token, name, workspaces, tables, roles}; ' +
      'a token may be stored as sha256:<hex>. A file with no token is refused (docs/security.md)',
  },
  'auth-jwt-issuer': {
    type: 'string',
    group: 'HTTP API auth:',
    describe: 'Accept JWT access tokens of this OpenID issuer (discovery + JWKS); needs --auth-jwt-audience',
  },
  'auth-jwt-audience': {
    type: 'string',
    group: 'HTTP API auth:',
    describe: 'The aud an accepted JWT must carry (required with --auth-jwt-issuer)',
  },
  'auth-jwt-clients': {
    type: 'string',
    group: 'HTTP API auth:',
    describe: 'Only JWTs issued to these clients (azp / client_id), comma-separated [any]',
  },
  'metrics-public': {
    type: 'boolean',
    group: 'HTTP API auth:',
    describe: 'Serve /metrics without a token (else it needs the admin role) [false]',
  },
  'snapshot-max-concurrent': {
    type: 'string',
    group: 'HTTP API:',
    describe: 'Snapshot requests served at once; more get 429 with Retry-After [2]',
  },
  'stream-max-clients': {
    type: 'string',
    group: 'HTTP API:',
    describe: 'Stream clients (SSE + WebSocket) served at once; more get 429 [1000]',
  },
};

export const jobOptions: Record<string, Options> = {
  oidc: {
    type: 'string',
    group: 'Workspace API:',
    describe:
      "OIDC issuer URL (or token endpoint) of start-job's workspace client; never the HTTP API's auth (--auth-jwt-issuer)",
  },
  'client-id': { type: 'string', group: 'Workspace API:', describe: 'OIDC client id' },
  'client-secret': {
    type: 'string',
    group: 'Workspace API:',
    describe: 'OIDC client secret (no default; prefer TAG_CONNECTOR_CLIENT_SECRET_FILE)',
  },
  ws: { type: 'string', group: 'Workspace API:', describe: 'Workspace GraphQL endpoint URL' },
  'mongo-addr': { type: 'string', group: 'Workspace API:', describe: 'MongoDB URL of the snapshot store' },
};

/** start-job only: the workspace snapshot, its store and the job chronology (src/startjob). */
export const startJobOptions: Record<string, Options> = {
  'oidc-scope': { type: 'string', group: 'Workspace API:', describe: 'Scope to request with the token' },
  'ws-query': {
    type: 'string',
    group: 'Workspace API:',
    describe: 'GraphQL query of one page (or @file); variables $first/$after (cursor) or $limit/$offset',
  },
  'ws-paging': { type: 'string', group: 'Workspace API:', describe: 'cursor|offset [cursor]' },
  'ws-items-path': {
    type: 'string',
    group: 'Workspace API:',
    describe: 'Dotted path of the page in the response data [items]',
  },
  'ws-id-field': { type: 'string', group: 'Workspace API:', describe: 'Id field of an item [id]' },
  'ws-page-size': { type: 'string', group: 'Workspace API:', describe: 'Items per page [500]' },
  'ws-timeout-ms': { type: 'string', group: 'Workspace API:', describe: 'Request timeout [30000]' },
  'ws-retries': { type: 'string', group: 'Workspace API:', describe: 'Retries on 5xx/timeouts [5]' },
  'ws-retry-base-ms': { type: 'string', group: 'Workspace API:', describe: 'First backoff delay [500]' },
  full: { type: 'boolean', group: 'Jobs:', describe: 'Healing runs emit every item, not only differences' },
  'start-initial-sync': {
    type: 'boolean',
    group: 'Jobs:',
    describe: 'Run an initial sync at start (env alias START_INITIAL_SYNC)',
  },
  'cron-pattern-healing-job': {
    type: 'string',
    group: 'Jobs:',
    describe: 'Cron (6 fields, UTC) of healing runs [0 */30 * * * *] (alias CRON_PATTERN_HEALING_JOB)',
  },
  'cron-pattern-dump-job': {
    type: 'string',
    group: 'Jobs:',
    describe: 'Cron (6 fields, UTC) of dump runs [0 0 3 * * *] (alias CRON_PATTERN_DUMP_JOB)',
  },
  'enable-healing-job-operation': {
    type: 'boolean',
    group: 'Jobs:',
    describe: 'Run healing jobs [true] (alias ENABLE_HEALING_JOB_OPERATION)',
  },
  'enable-dump-file-creation': {
    type: 'boolean',
    group: 'Jobs:',
    describe: 'Run dump jobs [false] (alias ENABLE_DUMP_FILE_CREATION)',
  },
  'heal-must-wait-for-initial-sync': {
    type: 'boolean',
    group: 'Jobs:',
    describe:
      'Refuse healing before a successful initial sync [true] (alias HEAL_MUST_WAIT_FOR_INITIAL_SYNC)',
  },
  'dump-dir': { type: 'string', group: 'Jobs:', describe: 'Directory of the gzipped NDJSON dumps [dumps]' },
  'job-lease-ms': {
    type: 'string',
    group: 'Jobs:',
    describe:
      "Lease of a running job in the store; a dead instance's run is found interrupted after it [30000]",
  },
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
  topic: {
    type: 'string',
    group: 'Sinks:',
    describe: 'Kafka / Pub/Sub topic [tag-connector.events]',
  },
  'reset-sink-checkpoints': {
    type: 'boolean',
    group: 'Sinks:',
    describe:
      'Forget sink checkpoints written for another cluster or slot (refused otherwise, exit 5); logged and recorded in each sink',
  },
  'kafka-exactly-once': {
    type: 'string',
    group: 'Sinks:',
    describe: 'Kafka: events and checkpoint in one transaction per batch (false = idempotent only) [true]',
  },
  'kafka-checkpoint-topic': {
    type: 'string',
    group: 'Sinks:',
    describe: 'Kafka: compacted topic of the sink checkpoints [tag-connector.checkpoints]',
  },
  'kafka-partitions': {
    type: 'string',
    group: 'Sinks:',
    describe: 'Kafka: partitions of event topics it creates [6]',
  },
  'kafka-replication-factor': {
    type: 'string',
    group: 'Sinks:',
    describe: 'Kafka: replication factor of topics it creates, -1 = broker default [-1]',
  },
  'kafka-client-id': { type: 'string', group: 'Sinks:', describe: 'Kafka: client id [tag-connector]' },
  'kafka-compression': {
    type: 'string',
    group: 'Sinks:',
    describe: 'Kafka: record batch compression, lz4|zstd|gzip|none [lz4]',
  },
  'kafka-thread': {
    type: 'string',
    group: 'Sinks:',
    describe: "Kafka: produce from a worker thread of the sink's own (false = on the main thread) [true]",
  },
  'kafka-tls': { type: 'string', group: 'Sinks:', describe: 'Kafka: connect with TLS [false]' },
  'kafka-ca-file': { type: 'string', group: 'Sinks:', describe: 'Kafka: CA certificate file (PEM) for TLS' },
  'kafka-sasl-mechanism': {
    type: 'string',
    group: 'Sinks:',
    describe: 'Kafka: SASL mechanism plain|scram-sha-256|scram-sha-512',
  },
  'kafka-sasl-username': { type: 'string', group: 'Sinks:', describe: 'Kafka: SASL user' },
  'kafka-sasl-password': {
    type: 'string',
    group: 'Sinks:',
    describe: 'Kafka: SASL password (no default; prefer TAG_CONNECTOR_KAFKA_SASL_PASSWORD_FILE)',
  },
  'project-id': { type: 'string', group: 'Sinks:', describe: 'Google Cloud project of the Pub/Sub topic' },
  'service-account': {
    type: 'string',
    group: 'Sinks:',
    describe: 'Service-account key file for Pub/Sub (default: ADC)',
  },
  'pubsub-ordering-buckets': {
    type: 'string',
    group: 'Sinks:',
    describe:
      'Pub/Sub: ordering key = one of N buckets by partition key (one entity keeps one key); 0 = the partition key itself [16]',
  },
  'dead-letter': {
    type: 'string',
    group: 'Sinks:',
    describe: 'Where permanently rejected events go: none (stop)|kafka:TOPIC|file:PATH [none]',
  },
  envelope: {
    type: 'string',
    group: 'Sinks:',
    describe: 'Event encoding: structured|binary|debezium [structured]',
  },
  'schema-registry': {
    type: 'string',
    group: 'Sinks:',
    describe:
      'Confluent-compatible schema registry URL: Kafka values in Avro, subjects <topic>-value (docs/governance.md)',
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
  'mask-key-file': {
    type: 'string',
    group: 'Replication:',
    describe: 'File holding the key of hmac-sha256 masks (config tables.<t>.mask; docs/governance.md)',
  },
  'state-schema': {
    type: 'string',
    group: 'Replication:',
    describe: 'Schema of our own state (checkpoints) [tag_connector]',
  },
};

export const backfillOptions: Record<string, Options> = {
  'snapshot-mode': {
    type: 'string',
    group: 'Backfill:',
    describe:
      'never | initial (backfill every tracked table once when the slot is created, then stream) | initial_only (stop after that backfill) [never]',
  },
  'backfill-allow-ctid': {
    type: 'boolean',
    group: 'Backfill:',
    describe: 'Backfill tables without a primary key in ctid ranges (weaker guarantee: docs/backfill.md)',
  },
  'backfill-parallel': { type: 'string', group: 'Backfill:', describe: 'Tables backfilled at a time [1]' },
  'backfill-chunk-size': {
    type: 'string',
    group: 'Backfill:',
    describe: 'Rows per backfill chunk at most (memory per chunk) [4096]',
  },
  'backfill-chunk-ms': {
    type: 'string',
    group: 'Backfill:',
    describe:
      'Time a chunk may hold live changes back: chunks shrink below the chunk size when emitting them takes longer (0: always the chunk size) [10]',
  },
};

export const jobRunnerOptions: Record<string, Options> = {
  'pgboss-schema': {
    type: 'string',
    group: 'Job runner:',
    describe: "Schema of pg-boss's queue tables [pgboss]",
  },
};

export const tuningOptions: Record<string, Options> = {
  'batch-size': { type: 'string', group: 'Tuning:', describe: 'Most events per sink write [2000]' },
  'max-in-flight-events': {
    type: 'string',
    group: 'Tuning:',
    describe: 'Events not yet durable everywhere before the stream pauses [5000]',
  },
  'max-in-flight-bytes': {
    type: 'string',
    group: 'Tuning:',
    describe: 'Bytes of such events before the stream pauses [16 MiB]',
  },
  'status-interval-ms': {
    type: 'string',
    group: 'Tuning:',
    describe: 'Standby status update interval [1000]',
  },
  'sink-retry-limit': {
    type: 'string',
    group: 'Tuning:',
    describe: 'Failed writes in a row before a sink stops the daemon [30]',
  },
  'shutdown-timeout-ms': { type: 'string', group: 'Tuning:', describe: 'Drain time on SIGTERM [8000]' },
  'heartbeat-interval-ms': {
    type: 'string',
    group: 'Tuning:',
    describe: 'Write a heartbeat row this often, 0 = off [0]',
  },
  'lag-warn-bytes': { type: 'string', group: 'Tuning:', describe: 'Warn when slot lag exceeds this [1 GiB]' },
  'startup-wait-ms': {
    type: 'string',
    group: 'Tuning:',
    describe: 'How long start-up waits for an unreachable PostgreSQL, then exits 1; 0 = no wait [60000]',
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

/** The flags of the commands that work on the job runner's tables (migrate, run-task, tasks). */
export const taskStoreOptions = [
  connectionOptions,
  { 'state-schema': replicationOptions['state-schema']! },
  jobRunnerOptions,
  commonOptions,
];
