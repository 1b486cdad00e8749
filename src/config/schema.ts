import { z } from 'zod';
import { DEFAULT_ORDERING_BUCKETS } from '../sinks/ordering-key.ts';
import { DEFAULT_TOPIC } from '../sinks/route.ts';
import { needsMaskKey, tableRulesSchema, tableTopicRoutes } from '../extractor/governance/index.ts';

/**
 * The one configuration schema. Keys are the CLI flag names in camelCase so that an error can name
 * the flag, the env var (TAG_CONNECTOR_<UPPER_SNAKE>) and the YAML key alike. The TypeScript type is
 * derived from it; there is no hand-written twin.
 */

/** An integer in [min, max]; every failure says `expected <what>`. */
const intIn = (what: string, min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce
    .number({ error: `expected ${what}` })
    .int({ error: `expected ${what}` })
    .min(min, { error: `expected ${what}` })
    .max(max, { error: `expected ${what}` });

const port = (what: string) => intIn(`a ${what} port number (1-65535)`, 1, 65535);

const boolish = z.preprocess(
  (v) => {
    if (typeof v === 'string') {
      const s = v.trim().toLowerCase();
      if (['true', '1', 'yes', 'on'].includes(s)) return true;
      if (['false', '0', 'no', 'off', ''].includes(s)) return false;
    }
    return v;
  },
  z.boolean({ error: 'expected true or false' }),
);

const positiveInt = (what: string) => intIn(what, 1);

const stringList = z.preprocess(
  (v) =>
    typeof v === 'string'
      ? v
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : v,
  z.array(z.string().min(1)),
);

const identifier = z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, {
  error: 'expected a lower-case identifier ([a-z_][a-z0-9_]*, at most 63 chars)',
});

/** A cron pattern: 6 fields (seconds first) or 5; the fields themselves are checked by start-job. */
const cron = z.string().refine((v) => [5, 6].includes(v.trim().split(/\s+/).length), {
  error: 'expected a cron pattern of 6 fields (sec min hour day month weekday) or 5',
});

export const SINK_KINDS = ['stdout', 'file', 'kafka', 'pubsub', 'noop'] as const;
export const PLUGINS = ['wal2json', 'pgoutput'] as const;
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const ENVELOPES = ['structured', 'binary', 'debezium'] as const;
export const SNAPSHOT_MODES = ['never', 'initial', 'initial_only'] as const;

/** Which table plays which role in the task system (docs/design.md §4). `table` is `schema.table`. */
const roleSchema = z.object({
  table: z.string().regex(/^[^.]+\.[^.]+$/, { error: 'expected schema.table' }),
  idColumn: z.string().default('id'),
  statusColumn: z.string().optional(),
  contextColumn: z.string().optional(),
});

export const configSchema = z
  .object({
    // connection (original flag names kept for existing deployments)
    pgUrl: z.string().optional(),
    db: z.string().optional(),
    pgHost: z.string().optional(),
    pgPort: port('PostgreSQL').optional(),
    user: z.string().optional(),
    password: z.string().optional(),

    // HTTP server
    serverHost: z.string().default('127.0.0.1'),
    serverPort: intIn('a port number (0-65535, 0 = any free port)', 0, 65535).default(8080),
    insecureListen: boolish.default(false),
    // API auth (src/api/auth/), the same for both daemons; never the workspace client's --oidc
    authTokensFile: z.string().min(1, { error: 'expected a file path' }).optional(),
    authJwtIssuer: z
      .url({ protocol: /^https?$/, error: 'expected the http(s) URL of an OpenID issuer' })
      .optional(),
    authJwtAudience: z.string().min(1, { error: 'expected the audience of this API' }).optional(),
    authJwtClients: stringList.optional(),
    metricsPublic: boolish.default(false),
    snapshotMaxConcurrent: intIn('a number of concurrent Snapshot requests (1-100)', 1, 100).default(2),
    streamMaxClients: intIn('a number of Stream clients (1-100000)', 1, 100_000).default(1000),

    // OIDC / workspace API (start-job)
    oidc: z.string().optional(),
    clientId: z.string().optional(),
    clientSecret: z.string().optional(),
    ws: z.string().optional(),
    mongoAddr: z.string().optional(),
    // start-job: workspace snapshot (src/startjob)
    oidcScope: z.string().optional(),
    wsQuery: z.string().optional(),
    wsPaging: z.enum(['cursor', 'offset'], { error: 'expected cursor|offset' }).default('cursor'),
    wsItemsPath: z.string().default('items'),
    wsIdField: z.string().default('id'),
    wsPageSize: positiveInt('a positive number of items').default(500),
    wsTimeoutMs: positiveInt('a positive number of milliseconds').default(30000),
    wsRetries: z.coerce.number().int().min(0).default(5),
    wsRetryBaseMs: positiveInt('a positive number of milliseconds').default(500),
    full: boolish.default(false),
    startInitialSync: boolish.default(false),
    cronPatternHealingJob: cron.default('0 */30 * * * *'),
    cronPatternDumpJob: cron.default('0 0 3 * * *'),
    enableHealingJobOperation: boolish.default(true),
    enableDumpFileCreation: boolish.default(false),
    healMustWaitForInitialSync: boolish.default(true),
    dumpDir: z.string().default('dumps'),
    jobLeaseMs: positiveInt('a positive number of milliseconds').default(30000),

    // Google Pub/Sub
    projectId: z.string().optional(),
    serviceAccount: z.string().optional(),
    // Pub/Sub ordering keys: 0 = the event's partition key; N = one of N buckets (src/sinks/ordering-key.ts;
    // buckets by default: one key per entity made nearly every message a publish call of its own)
    pubsubOrderingBuckets: intIn(
      'a number of ordering-key buckets (0-10000, 0 = the partition key itself)',
      0,
      10_000,
    ).default(DEFAULT_ORDERING_BUCKETS),
    topic: z.string().optional(),

    // sinks
    sink: z
      .preprocess(
        (v) => (typeof v === 'string' ? v.split(',').map((s) => s.trim()) : v),
        z
          .array(z.enum(SINK_KINDS, { error: `expected one of ${SINK_KINDS.join('|')}` }))
          .min(1, { error: 'expected at least one sink' }),
      )
      .default(['stdout']),
    filePath: z.string().default('tag-connector-events.ndjson'),
    kafkaBrokers: stringList.optional(),
    // Kafka sink (src/sinks/kafka/); `topic` is its default topic [tag-connector.events]
    kafkaExactlyOnce: boolish.default(true),
    // forget sink checkpoints written for another cluster/slot life (docs/delivery-guarantees.md)
    resetSinkCheckpoints: boolish.default(false),
    kafkaCheckpointTopic: z.string().min(1).default('tag-connector.checkpoints'),
    kafkaPartitions: positiveInt('a positive number of partitions').default(6),
    kafkaReplicationFactor: intIn('a replication factor (-1 = the broker default)', -1).default(-1),
    kafkaClientId: z.string().min(1).default('tag-connector'),
    kafkaCompression: z
      .enum(['lz4', 'zstd', 'gzip', 'none'], { message: 'expected one of lz4, zstd, gzip, none' })
      .default('lz4'),
    // the producer in a worker thread of the sink's own; false: on the main thread (fewer threads, slower)
    kafkaThread: boolish.default(true),
    kafkaTls: boolish.default(false),
    kafkaCaFile: z.string().optional(),
    kafkaSaslMechanism: z
      .enum(['plain', 'scram-sha-256', 'scram-sha-512'], {
        error: 'expected plain|scram-sha-256|scram-sha-512',
      })
      .optional(),
    kafkaSaslUsername: z.string().optional(),
    kafkaSaslPassword: z.string().optional(),
    /**
     * Topic per event type or table, for Kafka and Pub/Sub: keys are an event type (`task.created`), a
     * type prefix (`task.*`) or a table (`public.tasks`); the first match in that order wins, else `topic`.
     */
    topicRoutes: z.record(z.string(), z.string().min(1)).default({}),
    envelope: z.enum(ENVELOPES, { error: `expected one of ${ENVELOPES.join('|')}` }).default('structured'),

    // replication
    slot: identifier.default('tag_connector'),
    publication: identifier.default('tag_connector'),
    plugin: z.enum(PLUGINS, { error: `expected one of ${PLUGINS.join('|')}` }).default('wal2json'),
    schemas: stringList.default(['public']),
    tables: stringList.default([]),
    excludeTables: stringList.default([]),
    /**
     * Per-table governance rules (docs/governance.md): the YAML `tables:` mapping (a `tables:` list is
     * `tables` above). Tables named here are tracked too.
     */
    tableRules: tableRulesSchema,
    /** File holding the HMAC key of `hmac-sha256` masks (read into maskKey; surrounding whitespace trimmed). */
    maskKeyFile: z.string().min(1).optional(),
    maskKey: z.string().min(1, { error: 'expected a non-empty key' }).optional(),
    /** Where permanently rejected events go: none (stop, as before), kafka:<topic> or file:<path>. */
    deadLetter: z
      .string()
      .regex(/^(none|kafka:.+|file:.+)$/, { error: 'expected none, kafka:<topic> or file:<path>' })
      .default('none'),
    /**
     * Confluent-compatible schema registry (docs/governance.md "Avro"): the Kafka sink then writes
     * Avro values registered under `<topic>-value`, in Confluent's wire format.
     */
    schemaRegistry: z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' }).optional(),
    stateSchema: identifier.default('tag_connector'),
    // backfills (docs/backfill.md)
    snapshotMode: z
      .enum(SNAPSHOT_MODES, { error: `expected one of ${SNAPSHOT_MODES.join('|')}` })
      .default('never'),
    backfillAllowCtid: boolish.default(false),
    backfillParallel: intIn('a number of tables from 1 to 64', 1, 64).default(1),
    backfillChunkSize: intIn('a number of rows from 1 to 100000', 1, 100_000).default(4096),
    backfillChunkMs: intIn('a number of milliseconds from 0 to 60000', 0, 60_000).default(10),
    // job runner
    pgbossSchema: identifier.default('pgboss'),
    preset: z.enum(['none', 'pgboss', 'etl'], { error: 'expected none|pgboss|etl' }).default('etl'),
    roles: z
      .object({
        task: roleSchema.optional(),
        etlContext: roleSchema.optional(),
        eventStore: roleSchema.optional(),
      })
      .default({}),
    workspaceColumn: z.string().default('workspace'),
    streamRetentionBytes: z.coerce
      .number({ error: 'expected a number of bytes (0 = no Stream retention)' })
      .int()
      .min(0)
      .default(256 * 1024 * 1024),
    streamRetentionDir: z.string().optional(),
    streamClientBufferBytes: positiveInt('a positive number of bytes').default(8 * 1024 * 1024),

    // limits (backpressure)
    maxInFlightEvents: positiveInt('a positive number of events').default(5000),
    maxInFlightBytes: positiveInt('a positive number of bytes').default(16 * 1024 * 1024),
    batchSize: positiveInt('a positive number of events').default(2000),
    flushIntervalMs: positiveInt('a positive number of milliseconds').default(20),
    statusIntervalMs: positiveInt('a positive number of milliseconds').default(1000),
    sinkRetryLimit: positiveInt('a positive number of attempts').default(30),
    shutdownTimeoutMs: positiveInt('a positive number of milliseconds').default(8000),
    heartbeatIntervalMs: z.coerce.number().int().min(0).default(0),
    // docs/connection-lifecycle.md: start-up waits this long for PostgreSQL to become reachable.
    startupWaitMs: z.coerce.number().int().min(0).default(60000),
    lagWarnBytes: positiveInt('a positive number of bytes').default(1024 * 1024 * 1024),

    logLevel: z.enum(LOG_LEVELS, { error: `expected one of ${LOG_LEVELS.join('|')}` }).default('info'),
  })
  .superRefine((c, ctx) => {
    // A JWT for another application must never read this API: the audience is not optional.
    if (c.authJwtIssuer && !c.authJwtAudience)
      ctx.addIssue({
        code: 'custom',
        path: ['authJwtAudience'],
        message: 'is required with --auth-jwt-issuer (the aud every accepted token must carry)',
      });
    for (const key of ['authJwtAudience', 'authJwtClients'] as const)
      if (c[key] !== undefined && !c.authJwtIssuer)
        ctx.addIssue({ code: 'custom', path: [key], message: 'needs --auth-jwt-issuer' });
    // The checkpoint topic is compacted and read back as the sink's own: events in it would be taken
    // for checkpoints (and a checkpoint among events for an event).
    const eventTopics = [
      c.topic ?? DEFAULT_TOPIC,
      ...Object.values(c.topicRoutes),
      ...Object.values(tableTopicRoutes(c.tableRules)),
    ];
    if (eventTopics.includes(c.kafkaCheckpointTopic))
      ctx.addIssue({
        code: 'custom',
        path: ['kafkaCheckpointTopic'],
        message: 'must differ from --topic and every topicRoutes topic',
      });
    if (c.schemaRegistry !== undefined && c.envelope !== 'structured')
      ctx.addIssue({
        code: 'custom',
        path: ['schemaRegistry'],
        message: `writes Avro CloudEvents: it cannot be combined with --envelope ${c.envelope}`,
      });
    if (needsMaskKey(c.tableRules) && c.maskKey === undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['maskKeyFile'],
        message: 'an hmac-sha256 mask needs a key: --mask-key-file (or TAG_CONNECTOR_MASK_KEY_FILE)',
      });
  });

export type Config = Readonly<z.infer<typeof configSchema>>;
export type ConfigInput = z.input<typeof configSchema>;
export type SinkKind = (typeof SINK_KINDS)[number];

/** Keys whose values are secrets: never defaulted, never logged, redacted in /info. */
export const SECRET_KEYS = ['password', 'clientSecret', 'kafkaSaslPassword', 'maskKey'] as const;

/** Keys that may also hold a URL with embedded credentials; their password part is redacted. */
export const URL_KEYS = ['pgUrl', 'mongoAddr', 'ws', 'oidc', 'authJwtIssuer', 'schemaRegistry'] as const;

/**
 * Environment names of the job initiator this replaces (lblod delta-producer-background-jobs-initiator),
 * accepted as aliases of the TAG_CONNECTOR_* names; the TAG_CONNECTOR_* name wins when both are set.
 */
export const ENV_ALIASES: Readonly<Record<string, keyof ConfigInput>> = {
  START_INITIAL_SYNC: 'startInitialSync',
  CRON_PATTERN_HEALING_JOB: 'cronPatternHealingJob',
  CRON_PATTERN_DUMP_JOB: 'cronPatternDumpJob',
  ENABLE_HEALING_JOB_OPERATION: 'enableHealingJobOperation',
  ENABLE_DUMP_FILE_CREATION: 'enableDumpFileCreation',
  HEAL_MUST_WAIT_FOR_INITIAL_SYNC: 'healMustWaitForInitialSync',
};
