import swagger from '@fastify/swagger';
import Fastify, { type FastifyInstance } from 'fastify';
import { apiServerOptions } from '../api/server-options.ts';
import { Authenticator, authOptions, useAuth } from '../api/auth.ts';
import { consoleRoutes } from '../api/console.ts';
import { errorHandler, methodNotAllowed } from '../api/http-errors.ts';
import { openapiOptions } from '../api/openapi.ts';
import { etlContextRoutes } from '../api/routes/etl-contexts.ts';
import { pgClientConfig, sliceConfig, type Config } from '../config/index.ts';
import { createLogger, type Logger } from '../log.ts';
import { createSink, SINK_CONFIG_KEYS } from '../sinks/index.ts';
import { openSink, pgTarget, talkingTo } from '../service-errors.ts';
import { VERSION } from '../version.ts';
import { jobApi } from './api.ts';
import { parseCron } from './chronology.ts';
import { runDump } from './dump.ts';
import { EtlRunHooks } from './etl.ts';
import { SinkPublisher, SnapshotEvents, startJobSinkConfig, type Publisher } from './events.ts';
import { JobManager, type Executor, type RunHooks } from './jobs.ts';
import { runSnapshot } from './snapshot.ts';
import { SnapshotStore } from './store.ts';
import { OidcTokenSource, type TokenSource } from './token.ts';
import { resolveQuery, WorkspaceReader } from './workspace.ts';

export { JobManager } from './jobs.ts';
export { SnapshotStore } from './store.ts';
export { WorkspaceReader } from './workspace.ts';
export { OidcTokenSource } from './token.ts';

/**
 * start-job's composition root: snapshot store (Mongo) → token source (OIDC) → workspace reader
 * (GraphQL) → sinks → job manager (chronology, cron) → HTTP job API. Started in that order, stopped in
 * reverse; `stop` is idempotent and reports every teardown error together.
 */
export interface StartJob {
  app: FastifyInstance;
  jobs: JobManager;
  store: SnapshotStore;
  token?: TokenSource;
  publisher: Publisher;
  /** Whether the job API checks bearer tokens. */
  authenticated: boolean;
  /** Address the API listens on (after start). */
  address?: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface StartJobDeps {
  logger?: Logger;
  /** Instead of the configured sinks (tests). */
  publisher?: Publisher;
  token?: TokenSource;
  /** Where runs are recorded besides Mongo; default: the job runner's event store when Postgres is configured. */
  hooks?: RunHooks | null;
  /** Extra GraphQL variables for every page. */
  variables?: Record<string, unknown>;
}

export function requireStartJobConfig(config: Config): { ws: string; mongoAddr: string } {
  const missing = [!config.ws && '--ws', !config.mongoAddr && '--mongo-addr'].filter(Boolean);
  if (missing.length)
    throw Object.assign(new Error(`start-job needs ${missing.join(' and ')}`), {
      code: 'CONFIG',
      exitCode: 2,
    });
  return { ws: config.ws!, mongoAddr: config.mongoAddr! };
}

export async function buildStartJob(config: Config, deps: StartJobDeps = {}): Promise<StartJob> {
  const { ws, mongoAddr } = requireStartJobConfig(config);
  // The job API's auth comes from the --auth-* flags alone (the workspace client's --oidc never
  // switches it on); a config error (no credential, non-loopback without auth) stops here, exit 2.
  const auth = Authenticator.fromOptions(authOptions(config));
  const logger = deps.logger ?? createLogger(config.logLevel, { name: 'start-job' });
  const store = new SnapshotStore({ url: mongoAddr });
  const token =
    deps.token ??
    (config.oidc
      ? new OidcTokenSource({
          oidc: config.oidc,
          clientId: config.clientId ?? '',
          clientSecret: config.clientSecret ?? '',
          scope: config.oidcScope,
        })
      : undefined);
  const query = resolveQuery(config.wsQuery, config.wsPaging);
  const reader = () =>
    new WorkspaceReader({
      url: ws,
      query,
      paging: config.wsPaging,
      itemsPath: config.wsItemsPath,
      idField: config.wsIdField,
      pageSize: config.wsPageSize,
      timeoutMs: config.wsTimeoutMs,
      retries: config.wsRetries,
      retryBaseMs: config.wsRetryBaseMs,
      token,
      variables: deps.variables,
      onRetry: (info) => logger.warn(info, 'workspace API request failed; retrying'),
    });
  let publisher = deps.publisher;
  if (!publisher) {
    const ctx = {
      config: sliceConfig(startJobSinkConfig(config), SINK_CONFIG_KEYS),
      logger,
      database: new URL(ws).host,
      version: VERSION,
    };
    const sinks = [];
    for (const kind of config.sink) {
      const sink = await createSink(kind, ctx);
      await openSink(sink, config);
      sinks.push(sink);
    }
    publisher = new SinkPublisher(sinks);
  }
  const etl =
    deps.hooks === undefined && (config.pgUrl || config.pgHost || config.db)
      ? new EtlRunHooks(pgClientConfig(config), config.stateSchema)
      : undefined;
  const hooks = deps.hooks ?? etl;
  const events = new SnapshotEvents({ source: `/tag-connector/workspace/${new URL(ws).host}` });
  const snapshot: Executor = (run, signal) =>
    runSnapshot({
      snapshotId: run._id,
      kind: run.kind,
      source: reader(),
      store,
      publisher: publisher!,
      events,
      idField: config.wsIdField,
      full: run.full,
      signal,
    }).then((counts) => ({ counts }));
  for (const [flag, pattern] of [
    ['--cron-pattern-healing-job', config.cronPatternHealingJob],
    ['--cron-pattern-dump-job', config.cronPatternDumpJob],
  ] as const) {
    try {
      parseCron(pattern);
    } catch (err) {
      throw Object.assign(new Error(`invalid configuration: ${flag}: ${(err as Error).message}`), {
        exitCode: 2,
      });
    }
  }
  const jobs = new JobManager({
    store,
    logger,
    executors: {
      'initial-sync': snapshot,
      healing: snapshot,
      dump: (run, signal) =>
        runDump({ dumpId: run._id, dir: config.dumpDir, store, publisher: publisher!, events, signal }).then(
          (result) => ({ result }),
        ),
    },
    hooks,
    startInitialSync: config.startInitialSync,
    cronHealing: config.cronPatternHealingJob,
    cronDump: config.cronPatternDumpJob,
    enableHealing: config.enableHealingJobOperation,
    enableDump: config.enableDumpFileCreation,
    healMustWaitForInitialSync: config.healMustWaitForInitialSync,
    full: config.full,
    leaseMs: config.jobLeaseMs,
  });
  const app = Fastify({
    ...apiServerOptions(logger),
    ajv: { customOptions: { removeAdditional: false, coerceTypes: true } },
  }) as unknown as FastifyInstance;
  app.setErrorHandler(errorHandler(logger));
  methodNotAllowed(app);
  await app.register(
    swagger,
    openapiOptions(
      app,
      {
        title: 'tag-connector start-job',
        version: VERSION,
        description: 'Job API: initial sync, healing, dump',
      },
      auth.enabled,
    ),
  );

  useAuth(app, auth);
  auth.warm((err) => logger.warn({ err: err.message }, 'OpenID discovery failed; retried on use'));
  await app.register(jobApi, {
    jobs,
    ready: async () => {
      await store.db.command({ ping: 1 });
    },
  });
  // The runs' ETL contexts (read-only, admin) and the console page (public; its data calls carry a token).
  await app.register(etlContextRoutes, { store: etl?.events });
  await app.register(consoleRoutes, { daemon: 'start-job' });
  app.get('/openapi.json', { schema: { hide: true }, config: { role: 'authenticated' } }, async () =>
    app.swagger(),
  );

  let phase: 'new' | 'started' | 'stopped' = 'new';
  const self: StartJob = { app, jobs, store, token, publisher, authenticated: auth.enabled, start, stop };
  async function start() {
    if (phase !== 'new') return;
    phase = 'started';
    await talkingTo('Mongo', mongoAddr, () => store.open());
    if (etl) await talkingTo('PostgreSQL', pgTarget(pgClientConfig(config)), () => etl.open());
    await jobs.start();
    self.address = await app.listen({ host: config.serverHost, port: config.serverPort });
    logger.info({ address: self.address }, 'start-job listening');
  }
  async function stop() {
    if (phase === 'stopped') return;
    phase = 'stopped';
    const errors: unknown[] = [];
    const step = async (fn: () => Promise<unknown>) => fn().catch((e: unknown) => errors.push(e));
    await step(() => app.close());
    await step(() => jobs.stop(config.shutdownTimeoutMs));
    await step(() => publisher!.close());
    await step(() => store.close());
    if (etl) await step(() => etl.close());
    if (errors.length) throw new AggregateError(errors, 'start-job shutdown had errors');
  }
  return self;
}

/** The `start-job` command: runs until SIGINT/SIGTERM. */
export async function runStartJob(config: Config): Promise<number> {
  const sj = await buildStartJob(config);
  try {
    await sj.start();
  } catch (err) {
    await sj.stop().catch(() => undefined);
    throw err;
  }
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await sj.stop();
  return 0;
}
