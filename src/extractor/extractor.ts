import pg from 'pg';
import { databaseName, pgClientConfig, sliceConfig } from '../config/index.ts';
import type { ExtractorConfig } from './config.ts';
import type { Logger } from '../log.ts';
import { createMetrics, type Metrics } from '../metrics.ts';
import { createSink, preloadSinks, SINK_CONFIG_KEYS } from '../sinks/index.ts';
import { StreamLog } from '../sinks/stream-log.ts';
import {
  observeTransactions,
  Mapper,
  Pipeline,
  type Decoder,
  resolveRoles,
  TableFilter,
} from './pipeline/index.ts';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import { SinkRunner, type SinkRunnerOptions } from '../sinks/runner.ts';
import type { Sink } from '../sinks/sink.ts';
import { migrate } from '../state/migrate.ts';
import { ident } from '../state/db.ts';
import { VERSION } from '../version.ts';
import { errors } from '../errors.ts';
import { openSink, pgTarget, talkingTo } from '../service-errors.ts';
import {
  BackfillRunner,
  BackfillService,
  BackfillStream,
  initialBackfillQueued,
  owedInitialBackfill,
  oweInitialBackfill,
} from './backfill/index.ts';
import { Catalog, decodeWal2Json, governedColumns, WAL2JSON_OPTIONS } from './decode/index.ts';
import { PgCheckpointStore, extractorMigrations } from './state/index.ts';
import { PgShapeStore } from './shapes/index.ts';
import {
  assertSameServer,
  checkpointIdentity,
  identifyServer,
  readServerState,
  PgReplicationSource,
  checkPluginAllowed,
  ensurePublication,
  ensureSlot,
  preflight,
  LagHistory,
  LeaderLock,
  startSlotMonitor,
  untilReachable,
} from './replication/index.ts';
import { Governance } from './governance/index.ts';
import { configRoutes } from '../sinks/route.ts';
import {
  deadLetterRoute,
  FileDeadLetters,
  parseDeadLetterSpec,
  type DeadLetterRoute,
  type DeadLetterTarget,
} from '../sinks/dead-letter/index.ts';
import { StartupSteps } from './startup-steps.ts';

/**
 * The extractor: builds its parts (replication, decode, pipeline, sinks, backfill), starts them in
 * order, stops them in reverse. start() and stop() are safe to call more than once. The command's
 * composition root (src/app/extract-tasks.ts) builds it beside the API, which reads its state.
 */
export class Extractor {
  private readonly config: ExtractorConfig;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly database: string;
  readonly filter: TableFilter;
  readonly pool: pg.Pool;
  /** Table metadata; the Stream reads it too (which tables have the workspace column). */
  readonly catalog: Catalog;
  /** The tables' rules (docs/governance.md): the mapper applies them, the Snapshot route too. */
  governance: Governance;
  private mapper?: Mapper;
  pipeline?: Pipeline;
  streamLog?: StreamLog;
  runners: SinkRunner[] = [];
  /** The slot lag of the last hour, for the console's chart (GET /v1/api/slot/lag-history). */
  readonly lagHistory = new LagHistory();
  private started = false;
  private lock?: LeaderLock;
  private stopMonitor?: () => void;
  private heartbeat?: NodeJS.Timeout;
  standby = false;
  /** Why start-up is still waiting for PostgreSQL, if it is (readiness reports it). */
  startupProblem?: Error;
  private stopped = false;
  private leaderEpoch?: number;
  /** Backfill requests and state (API, /info); set once the state schema is migrated. */
  backfills?: BackfillService;
  backfillRunner?: BackfillRunner;
  private backfillPool?: pg.Pool;
  /** Called when the daemon has finished its work by itself (`--snapshot-mode initial_only`). */
  onFinished?: (reason: string) => void;
  private deadLetterTarget?: DeadLetterTarget;

  constructor(config: ExtractorConfig, logger: Logger) {
    this.config = config;
    this.logger = logger;
    this.metrics = createMetrics();
    this.database = databaseName(config);
    this.filter = new TableFilter(config, resolveRoles(config));
    this.governance = new Governance(config.tableRules, config.maskKey);
    this.pool = new pg.Pool({ ...pgClientConfig(config), max: 4, application_name: 'tag-connector' });
    this.pool.on('error', (err) => logger.warn({ err: err.message }, 'idle database connection lost'));
    this.catalog = new Catalog(this.pool);
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    const { config, logger } = this;
    const steps = new StartupSteps();
    // The sinks' client libraries load meanwhile (a standby: while it waits for the lock). Nothing is
    // opened before the lock: an open reads the checkpoint, and Kafka's fences the other writer.
    const preloading = preloadSinks(config.sink, { kafkaThread: config.kafkaThread });
    // Waits out a PostgreSQL that is not reachable yet, up to --startup-wait-ms (docs/connection-lifecycle.md).
    try {
      await talkingTo('PostgreSQL', pgTarget(pgClientConfig(config)), () =>
        untilReachable(() => preflight(this.pool), {
          logger,
          waitMs: config.startupWaitMs,
          keepTrying: () => !this.stopped,
          onWaiting: (err) => (this.startupProblem = err),
        }),
      );
    } catch (err) {
      if (this.stopped) return; // stopped while waiting: nothing started
      throw err;
    }
    await migrate(this.pool, config.stateSchema, 'extractor', extractorMigrations);
    steps.mark('preflight and migrations');
    this.backfills = new BackfillService({
      db: this.pool,
      stateSchema: config.stateSchema,
      slot: config.slot,
      isTracked: (table) => this.filter.isTracked(table),
      allowCtid: config.backfillAllowCtid,
      chunkSize: config.backfillChunkSize,
    });
    this.lock = new LeaderLock(pgClientConfig(config), config.slot, logger);
    const leader = await this.lock.acquire(() => (this.standby = true));
    this.standby = false;
    if (!leader) return;
    steps.mark('leader lock');
    await this.claimLeadership();
    steps.mark('leader epoch');
    await preloading;
    steps.mark('sink modules');
    this.metrics.leader.set(1);
    this.lock.onLost = (err) => {
      this.metrics.leader.set(0);
      logger.warn({ err: err.message }, 'leader lock lost: pausing the stream until it is ours again');
      this.pipeline?.interrupt(err);
    };
    if (config.plugin === 'wal2json') await checkPluginAllowed(this.pool, 'wal2json');
    if (config.plugin === 'pgoutput') {
      await ensurePublication(
        this.pool,
        config.publication,
        {
          schemas: this.filter.schemaList(),
          tables: this.filter.explicitList(),
          roleTables: this.filter.roleTableList(),
        },
        logger,
      );
    }
    steps.mark('plugin and publication');
    // --snapshot-mode initial: owed from before the slot exists (crash-safe; backfill/initial.ts).
    if (config.snapshotMode !== 'never') await oweInitialBackfill(this.pool, config.stateSchema, config.slot);
    else await initialBackfillQueued(this.pool, config.stateSchema, config.slot); // not wanted any more
    const slot = await ensureSlot(this.pool, {
      slot: config.slot,
      plugin: config.plugin,
      stateSchema: config.stateSchema,
      logger,
    });

    // Where the sinks' checkpoints must come from (docs/delivery-guarantees.md): judged as each opens.
    const server = await readServerState(this.pool, pgClientConfig(config), {
      stateSchema: config.stateSchema,
      slot: config.slot,
      slotCreated: slot.created,
    });
    const identity = checkpointIdentity(server, { resetMismatched: config.resetSinkCheckpoints, logger });
    steps.mark('slot and server identity');
    const store = new PgCheckpointStore(this.pool, config.stateSchema, config.slot, server.origin);
    const deadLetters = await this.openDeadLetters();
    const ctx = {
      config: sliceConfig(config, SINK_CONFIG_KEYS),
      logger,
      database: this.database,
      version: VERSION,
      origin: server.origin,
      // Avro schemas follow the rules in force (a reload swaps this.governance)
      tableColumns: (table: string) => governedColumns(this.pool, this.governance, table),
    };
    const pipelineRef: { p?: Pipeline } = {};
    const runnerFor = (sink: Sink, onBatch?: SinkRunnerOptions['onBatch']) =>
      new SinkRunner(sink, {
        batchSize: config.batchSize,
        retryLimit: config.sinkRetryLimit,
        logger,
        store,
        identity,
        onDurable: (name, ordinal) => pipelineRef.p?.markDurable(name, ordinal),
        onFatal: (_name, err) => pipelineRef.p?.fail(err),
        onRetry: (name) => this.metrics.sinkRetries.inc({ sink: name }),
        onState: (name, state) =>
          this.metrics.sinkFailing.set({ sink: name }, state === 'retrying' || state === 'failed' ? 1 : 0),
        ...(deadLetters ? { deadLetters } : {}),
        ...(onBatch ? { onBatch } : {}),
      });
    const observeBatch: SinkRunnerOptions['onBatch'] = (name, events, ms) => {
      this.metrics.sinkEvents.inc({ sink: name }, events.length);
      this.metrics.sinkLatency.observe({ sink: name }, ms / 1000);
      const histogram = this.metrics.commitToAck.labels({ sink: name });
      observeTransactions(events, performance.timeOrigin + performance.now(), (ms) =>
        histogram.observe(ms / 1000),
      );
    };
    for (const kind of new Set(config.sink))
      this.runners.push(runnerFor(await createSink(kind, ctx), observeBatch));
    if (config.streamRetentionBytes > 0) {
      const dir =
        config.streamRetentionDir ??
        join(
          process.env.XDG_STATE_HOME ?? join(homedir(), '.local', 'state'),
          'tag-connector',
          'stream',
          `${this.database}-${config.slot}`,
        );
      // A new slot starts a new history: an old retention under the same name would shadow it.
      if (slot.created) rmSync(dir, { recursive: true, force: true });
      this.streamLog = new StreamLog({
        dir,
        maxBytes: config.streamRetentionBytes,
        startLsn: slot.confirmedFlushLsn,
      });
      this.runners.push(runnerFor(this.streamLog));
    }
    for (const r of this.runners) {
      await openSink(r, config);
      steps.mark(`open ${r.name}`);
    }

    const decoder: Decoder =
      config.plugin === 'wal2json'
        ? decodeWal2Json
        : (await import('./decode/pgoutput.ts')).createPgoutputDecoder();
    const options: Record<string, string> =
      config.plugin === 'wal2json'
        ? {
            ...WAL2JSON_OPTIONS,
            'add-tables': this.filter.wal2jsonAddTables(),
            ...(this.filter.wal2jsonFilterTables()
              ? { 'filter-tables': this.filter.wal2jsonFilterTables() }
              : {}),
          }
        : {
            proto_version: '1',
            publication_names: `"${config.publication.replace(/"/g, '""')}"`,
            messages: 'true',
          };

    const backfillStream = new BackfillStream({ slot: config.slot, stateSchema: config.stateSchema, logger });
    // schema.changed: the tables' shapes, recorded per life of the slot (docs/governance.md)
    const shapes = new PgShapeStore({
      db: this.pool,
      stateSchema: config.stateSchema,
      slot: config.slot,
      incarnation: `${server.origin.systemId}/${server.origin.slotIncarnation}`,
      logger,
      keepTrying: () => !this.stopped && !pipelineRef.p?.fatalError,
    });
    const pipeline = new Pipeline({
      backfill: backfillStream,
      shapes,
      logger,
      metrics: this.metrics,
      decoder,
      catalog: this.catalog,
      filter: this.filter,
      mapper: (this.mapper = new Mapper({
        database: this.database,
        slot: config.slot,
        roles: resolveRoles(config),
        governance: this.governance,
      })),
      runners: this.runners,
      ...(deadLetters ? { deadLetters } : {}),
      connect: () =>
        new PgReplicationSource(
          {
            ...pgClientConfig(config),
            application_name: 'tag-connector',
            options: '-c TimeZone=UTC -c DateStyle=ISO',
          },
          { slot: config.slot, options },
        ),
      beforeConnect: async () => {
        // Only the holder of the leader lock may stream (it is lost with its session on a restart).
        if (!(await this.lock!.acquire())) throw new Error('stopping');
        await this.claimLeadership();
        this.metrics.leader.set(1);
        const { rows } = await this.pool.query<{ wal_status: string | null }>(
          `SELECT wal_status FROM pg_replication_slots WHERE slot_name = $1`,
          [config.slot],
        );
        if (!rows[0]) throw errors.slotLost(config.slot);
        if (rows[0].wal_status === 'lost') throw errors.slotInvalidated(config.slot, 'lost');
        // Another server at the same address (a failover, a replacement) is judged by a new start.
        assertSameServer(server.origin, await identifyServer(pgClientConfig(config)));
      },
      startLsn: slot.confirmedFlushLsn,
      maxInFlightEvents: config.maxInFlightEvents,
      maxInFlightBytes: config.maxInFlightBytes,
      statusIntervalMs: config.statusIntervalMs,
    });
    pipelineRef.p = pipeline;
    this.pipeline = pipeline;
    await pipeline.start();
    steps.mark('replication started');
    logger.info(
      { steps: steps.summary(), sinceLockMs: steps.sinceMs('leader lock') },
      'start-up steps (ms each)',
    );
    await this.startBackfills(backfillStream);
    this.stopMonitor = startSlotMonitor({
      db: this.pool,
      slot: config.slot,
      lagWarnBytes: config.lagWarnBytes,
      logger,
      metrics: this.metrics,
      onFatal: (err) => pipeline.fail(err),
      onReading: (h) => {
        if (h.lagBytes !== null) this.lagHistory.add({ t: Date.now(), lagBytes: h.lagBytes });
      },
    });
    if (config.heartbeatIntervalMs > 0) {
      // A write in the watched database makes the server send us a (filtered, empty) transaction even
      // when nothing we track changes, so the slot advances on a busy server with idle tables.
      const sql = `INSERT INTO ${ident(config.stateSchema)}.heartbeat (slot, beat_at) VALUES ($1, now())
                   ON CONFLICT (slot) DO UPDATE SET beat_at = now()`;
      this.heartbeat = setInterval(() => {
        this.pool
          .query(sql, [config.slot])
          .catch((err: Error) => logger.warn({ err: err.message }, 'heartbeat write failed'));
      }, config.heartbeatIntervalMs);
      this.heartbeat.unref();
    }
  }

  /**
   * A reload (SIGHUP, a change of the config file; docs/governance.md): the `tables:` rules and the
   * topic routes of a new, already validated config. The rules compile first (nothing changes when
   * that fails); the sinks get their new routes (and topics) before the mapper its new rules, which
   * apply from the next transaction on. Which tables are tracked still needs a restart.
   */
  async reload(next: ExtractorConfig): Promise<void> {
    const governance = new Governance(next.tableRules, next.maskKey);
    const routes = configRoutes(next);
    const tombstones = Object.keys(next.tableRules).filter((t) => next.tableRules[t]!.tombstones);
    for (const r of this.runners) await r.sink.setRoutes?.(routes, tombstones);
    this.governance = governance;
    this.mapper?.setGovernance(governance);
    const untracked = governance.tables().filter((t) => !this.filter.isTracked(t));
    if (untracked.length)
      this.logger.warn({ tables: untracked }, 'rules for tables not tracked: they apply after a restart');
  }

  /**
   * Bumps the slot's leader epoch right after taking the lock. Back from a lost lock, a jump of more
   * than one means another daemon led meanwhile and wrote to the sinks: ours remember stale
   * checkpoints, so this process stops (E_LEADER_CHANGED) rather than writing those events again.
   */
  private async claimLeadership(): Promise<void> {
    const { rows } = await this.pool.query<{ epoch: string }>(
      `INSERT INTO ${ident(this.config.stateSchema)}.leader_epochs AS e (slot, epoch) VALUES ($1, 1)
       ON CONFLICT (slot) DO UPDATE SET epoch = e.epoch + 1, acquired_at = now() RETURNING epoch`,
      [this.config.slot],
    );
    const epoch = Number(rows[0]!.epoch);
    const mine = this.leaderEpoch;
    this.leaderEpoch = epoch;
    if (mine !== undefined && epoch !== mine + 1) throw errors.leaderChanged(this.config.slot);
  }

  /** The backfill runner (leader only) and `--snapshot-mode` (docs/backfill.md). */
  private async startBackfills(stream: BackfillStream): Promise<void> {
    const { config, logger } = this;
    const service = this.backfills!;
    // Sessions print values as the replication connection does, so reads equal decoded changes.
    // synchronous_commit=local: the stream sees a watermark only once its WAL is flushed, and with
    // synchronous_commit off that waits for the WAL writer (up to wal_writer_delay) at every chunk.
    this.backfillPool = new pg.Pool({
      ...pgClientConfig(config),
      // A connection per table being read, one for watermarks and the stream's chunk reads, one to spare.
      max: config.backfillParallel + 2,
      application_name: 'tag-connector-backfill',
      options:
        '-c TimeZone=UTC -c DateStyle=ISO -c IntervalStyle=postgres -c bytea_output=hex -c synchronous_commit=local',
    });
    this.backfillPool.on('error', (err) =>
      logger.warn({ err: err.message }, 'idle backfill connection lost'),
    );
    const pipeline = this.pipeline!;
    this.backfillRunner = new BackfillRunner({
      db: this.backfillPool,
      service,
      stream,
      stateSchema: config.stateSchema,
      slot: config.slot,
      parallel: config.backfillParallel,
      chunkMs: config.backfillChunkMs,
      logger,
      metrics: { rows: this.metrics.backfillRows, remaining: this.metrics.backfillRemaining },
      confirmedLsn: () => pipeline.confirmedLsn(),
    });
    // Owed since this slot was created (by this start, or by one that died before queueing it).
    const initialId =
      config.snapshotMode !== 'never'
        ? await owedInitialBackfill(this.pool, config.stateSchema, config.slot)
        : null;
    if (initialId !== null) {
      const tables = await service.trackedTables();
      const b = await service.createInitial(initialId, tables, (table, err) =>
        logger.warn({ table, err: err.message }, 'initial backfill skips a table'),
      );
      await initialBackfillQueued(this.pool, config.stateSchema, config.slot);
      logger.info(
        { backfill: b?.id ?? initialId, tables: b?.tables.map((t) => t.table) ?? [] },
        'initial backfill queued',
      );
    }
    this.backfillRunner.start();
    if (config.snapshotMode === 'initial_only') void this.stopAfterInitial(service);
  }

  private async stopAfterInitial(service: BackfillService): Promise<void> {
    for (;;) {
      if (this.stopped) return;
      const initial = (await service.list(1000).catch(() => [])).find((b) => b.origin === 'initial');
      if (!initial || ['done', 'failed', 'canceled'].includes(initial.state)) {
        this.logger.info(
          { backfill: initial?.id ?? null, state: initial?.state ?? null },
          'initial_only: initial backfill over',
        );
        this.onFinished?.(`snapshot-mode initial_only: initial backfill ${initial?.state ?? 'absent'}`);
        return;
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  /** The dead-letter route of `--dead-letter` (docs/governance.md), or undefined for `none`. */
  private async openDeadLetters(): Promise<DeadLetterRoute | undefined> {
    const spec = parseDeadLetterSpec(this.config.deadLetter);
    if (spec.kind === 'none') return undefined;
    if (spec.kind === 'file') this.deadLetterTarget = new FileDeadLetters(spec.path);
    else {
      const { KafkaDeadLetters } = await import('../sinks/dead-letter/kafka.ts');
      const { kafkaConnectionOptions } = await import('../sinks/kafka/index.ts');
      if (!this.config.kafkaBrokers?.length)
        throw new Error('--dead-letter kafka:TOPIC needs --kafka-brokers');
      this.deadLetterTarget = new KafkaDeadLetters(spec.topic, {
        clientId: this.config.kafkaClientId,
        bootstrapBrokers: this.config.kafkaBrokers,
        timeout: 15000,
        connectTimeout: 5000,
        retries: 5,
        ...kafkaConnectionOptions(this.config),
      });
    }
    await this.deadLetterTarget.open();
    return deadLetterRoute(this.deadLetterTarget, {
      logger: this.logger,
      count: (sink) => this.metrics.deadLetters.inc({ sink }),
    });
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.backfillRunner?.stop();
    await this.backfillPool?.end().catch(() => undefined);
    this.stopMonitor?.();
    clearInterval(this.heartbeat);
    await this.pipeline?.stop(this.config.shutdownTimeoutMs);
    await this.lock?.release();
    this.metrics.leader.set(0);
    if (!this.pipeline) for (const r of this.runners) await r.close().catch(() => undefined);
    await this.deadLetterTarget?.close().catch(() => undefined);
    await this.pool.end().catch(() => undefined);
  }
}
