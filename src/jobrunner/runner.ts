import pg from 'pg';
import { PgBoss, type Job, type ScheduleOptions } from 'pg-boss';
import type { Logger } from '../log.ts';
import { migrate } from '../state/migrate.ts';
import type { Db } from '../state/db.ts';
import { runnerEnv, spawnRunTask, type DetachedRun } from './detached.ts';
import { jobrunnerMigrations } from './migrations.ts';
import { runTask, type RunResult } from './run-task.ts';
import { EventStore, type CreatedTask, type Enqueue } from './store.ts';

/** One queue: a kind of task, its worker module, and pg-boss's policies for its jobs. */
export interface QueueDefinition {
  /** pg-boss queue name, also the prefix of the task's event types (`<name>:INITIAL`). */
  name: string;
  /** Worker module (absolute path or file: URL) whose default export runs the task. */
  worker: string;
  /** Jobs of this queue run at once in this process [1]. */
  concurrency?: number;
  retryLimit?: number;
  /** Seconds before a retry [1]. */
  retryDelay?: number;
  retryBackoff?: boolean;
  retryDelayMax?: number;
  /** Seconds a run may take before pg-boss expires it (aborts its signal) and retries [900]. */
  expireInSeconds?: number;
  /** Dead-letter queue of jobs whose retries ran out: a name, or true for `<name>.dead`. */
  deadLetter?: string | boolean;
  /** Run every task of this queue in a detached process (a task's `:INITIAL` meta `detached` overrides). */
  detached?: boolean;
}

/** Job data: the context to run. A job without it (a cron schedule, a plain send) gets a new context. */
export interface TaskJobData {
  etlContextId?: number;
  [key: string]: unknown;
}

export interface JobRunnerOptions {
  pg: pg.ClientConfig;
  stateSchema: string;
  pgbossSchema: string;
  log: Logger;
  queues?: QueueDefinition[];
  /** Apply the migrations (ours and pg-boss's) on start [true]. */
  migrate?: boolean;
  /** Seconds between two polls of a worker [0.5]. */
  pollingIntervalSeconds?: number;
  /** Milliseconds between two orphan sweeps; 0 sweeps only on start [5000]. */
  adoptIntervalMs?: number;
  /**
   * An active job whose context nobody holds is adopted once it started this long ago and (with
   * periodic sweeps) the sweeps have seen it so for as long [10].
   */
  adoptGraceSeconds?: number;
  /** How long stop() waits for running tasks [8000]. */
  shutdownTimeoutMs?: number;
  /** Run pg-boss's cron scheduler in this process [true]. */
  schedule?: boolean;
  /**
   * Command of a detached run (`[node, cli main]`), and its environment: by default this process's,
   * with the connection settings and schemas of this runner as TAG_CONNECTOR_* variables.
   */
  detachedCommand?: string[];
  detachedEnv?: NodeJS.ProcessEnv;
  /** Called with every detached process started (the chaos test kills some). */
  onDetached?: (run: DetachedRun, etlContextId: number) => void;
  /** Don't work any queue (a process that only queues and inspects, like `run-task`). */
  noWorkers?: boolean;
}

const DEFAULTS = {
  concurrency: 1,
  retryLimit: 5,
  retryDelay: 1,
  retryBackoff: true,
  retryDelayMax: 60,
  expireInSeconds: 900,
};

const deadLetterName = (q: QueueDefinition) =>
  q.deadLetter === true ? `${q.name}.dead` : typeof q.deadLetter === 'string' ? q.deadLetter : undefined;

export class TaskFailedError extends Error {
  readonly etlContextId: number;
  constructor(etlContextId: number, cause: unknown) {
    super(
      `task ${etlContextId} failed: ${cause instanceof Error ? cause.message : String(cause)}`,
      cause === undefined ? undefined : { cause },
    );
    this.name = 'TaskFailedError';
    this.etlContextId = etlContextId;
  }
}

/**
 * The job runner's composition root: pg-boss (queues, retries, dead letters, cron), the event store,
 * the workers (in this process or detached) and the orphan sweep. `start()` and `stop()` are
 * idempotent; `stop()` undoes `start()` in reverse order and drains running tasks with a timeout.
 */
export class JobRunner {
  readonly options: JobRunnerOptions;
  readonly log: Logger;
  readonly pool: pg.Pool;
  readonly store: EventStore;
  readonly boss: PgBoss;
  private readonly queues = new Map<string, QueueDefinition>();
  private starting: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  private adoptTimer: NodeJS.Timeout | undefined;
  private adopting: Promise<number> | undefined;
  /** Active jobs of unlocked contexts seen by the sweep, and since when (see sweep). */
  private suspects = new Map<string, number>();
  private readonly detachedRuns = new Set<DetachedRun>();

  constructor(options: JobRunnerOptions) {
    this.options = options;
    this.log = options.log.child({ part: 'jobrunner' });
    this.pool = new pg.Pool({ ...options.pg, max: 8, application_name: 'tag-connector jobrunner' });
    this.pool.on('error', (err) => this.log.warn({ err }, 'idle pool connection error'));
    this.store = new EventStore(this.pool, options.stateSchema);
    this.boss = new PgBoss({
      ...(options.pg as object),
      schema: options.pgbossSchema,
      application_name: 'tag-connector pg-boss',
      max: 6,
      migrate: options.migrate ?? true,
      schedule: options.schedule ?? true,
      supervise: !options.noWorkers,
    } as ConstructorParameters<typeof PgBoss>[0]);
    this.boss.on('error', (err) => this.log.error({ err }, 'pg-boss error'));
    for (const q of options.queues ?? []) this.queues.set(q.name, q);
  }

  /** The worker module of a queue registered here. */
  workerOf = (queue: string): string | undefined => this.queues.get(queue)?.worker;

  /** Sends a context's job inside the transaction `tx` (the context's own). */
  enqueue: Enqueue = async (tx: Db, queue, data) => {
    await this.boss.send(queue, data, {
      db: { executeSql: (text: string, values?: unknown[]) => tx.query(text, values) },
    });
  };

  start(): Promise<void> {
    if (this.stopping) return Promise.reject(new Error('JobRunner was stopped; create a new one'));
    this.starting ??= this.doStart();
    return this.starting;
  }

  private async doStart(): Promise<void> {
    if (this.options.migrate ?? true)
      await migrate(this.pool, this.options.stateSchema, 'jobrunner', jobrunnerMigrations);
    await this.boss.start();
    for (const q of this.queues.values()) await this.createQueue(q);
    if (!this.options.noWorkers) {
      for (const q of this.queues.values()) await this.work(q);
      await this.adoptOrphans();
      const every = this.options.adoptIntervalMs ?? 5000;
      if (every > 0) {
        this.adoptTimer = setInterval(() => {
          this.adoptOrphans().catch((err) => this.log.warn({ err }, 'orphan sweep failed'));
        }, every);
        this.adoptTimer.unref();
      }
    }
    this.log.info(
      { queues: [...this.queues.keys()], schema: this.options.stateSchema },
      'job runner started',
    );
  }

  /** Registers (or updates) a queue: pg-boss queue, its dead-letter queue, its worker. */
  async addQueue(q: QueueDefinition): Promise<void> {
    this.queues.set(q.name, q);
    if (this.starting) {
      await this.starting;
      await this.createQueue(q);
      if (!this.options.noWorkers) await this.work(q);
    }
  }

  private async createQueue(q: QueueDefinition): Promise<void> {
    const dead = deadLetterName(q);
    if (dead && !(await this.boss.getQueue(dead))) await this.boss.createQueue(dead);
    const retryBackoff = q.retryBackoff ?? DEFAULTS.retryBackoff;
    const policy = {
      retryLimit: q.retryLimit ?? DEFAULTS.retryLimit,
      retryDelay: q.retryDelay ?? DEFAULTS.retryDelay,
      retryBackoff,
      // pg-boss refuses a maximum delay without backoff
      ...(retryBackoff ? { retryDelayMax: q.retryDelayMax ?? DEFAULTS.retryDelayMax } : {}),
      expireInSeconds: q.expireInSeconds ?? DEFAULTS.expireInSeconds,
    };
    if (await this.boss.getQueue(q.name)) {
      await this.boss.updateQueue(q.name, { ...policy, ...(dead ? { deadLetter: dead } : {}) });
    } else {
      await this.boss.createQueue(q.name, { ...policy, ...(dead ? { deadLetter: dead } : {}) });
    }
  }

  private async work(q: QueueDefinition): Promise<void> {
    await this.boss.work<TaskJobData>(
      q.name,
      {
        localConcurrency: q.concurrency ?? DEFAULTS.concurrency,
        batchSize: 1,
        pollingIntervalSeconds: this.options.pollingIntervalSeconds ?? 0.5,
      },
      async ([job]) => this.handle(q, job!),
    );
  }

  /** One pg-boss job: create its context if it has none, run it here or detached, settle the job. */
  private async handle(q: QueueDefinition, job: Job<TaskJobData>): Promise<object> {
    let id = job.data?.etlContextId;
    if (typeof id !== 'number') {
      // A scheduled or plainly sent job: its data is the task's INITIAL payload. Keyed by the job id,
      // so that a retry of this job runs the same context.
      const { context } = await this.store.createTask({
        queue: q.name,
        payload: job.data ?? null,
        meta: { jobId: job.id },
        worker: q.worker,
        idempotencyKey: `job:${job.id}`,
      });
      id = context.etl_context_id;
    }
    const initial = await this.store.initialEvent(id);
    const meta = (initial?.meta ?? {}) as { detached?: boolean };
    const detached = meta.detached ?? q.detached ?? false;
    const result = detached ? await this.runDetached(id, job) : await this.runHere(id, job);
    if (result.outcome === 'failed') throw new TaskFailedError(id, result.error);
    return { etlContextId: id, outcome: result.outcome };
  }

  private runHere(id: number, job: Job<TaskJobData>): Promise<RunResult> {
    return runTask(
      {
        pg: this.options.pg,
        store: this.store,
        enqueue: this.enqueue,
        workerOf: this.workerOf,
        log: this.log,
      },
      id,
      { attempt: job.retryCount, signal: job.signal },
    );
  }

  private async runDetached(id: number, job: Job<TaskJobData>): Promise<RunResult> {
    const run = spawnRunTask(id, {
      command: this.options.detachedCommand,
      env:
        this.options.detachedEnv ??
        runnerEnv(this.options.pg, {
          stateSchema: this.options.stateSchema,
          pgbossSchema: this.options.pgbossSchema,
          logLevel: this.log.level,
        }),
      attempt: job.retryCount,
    });
    this.detachedRuns.add(run);
    this.log.info({ etlContextId: id, pid: run.pid, attempt: job.retryCount }, 'detached task started');
    this.options.onDetached?.(run, id);
    const onAbort = () => run.kill('SIGTERM');
    job.signal.addEventListener('abort', onAbort, { once: true });
    try {
      const { outcome, code, signal } = await run.exited;
      this.log.info({ etlContextId: id, pid: run.pid, code, signal, outcome }, 'detached task exited');
      if (!outcome) {
        return {
          outcome: 'failed',
          etlContextId: id,
          ran: true,
          error: new Error(`detached run-task exited with ${signal ?? `code ${code}`}`),
        };
      }
      return { outcome, etlContextId: id, ran: true };
    } finally {
      job.signal.removeEventListener('abort', onAbort);
      this.detachedRuns.delete(run);
    }
  }

  /**
   * Creates a task (context + `:INITIAL` + job, in one transaction) on a registered queue. With an
   * idempotency key a repeated call returns the first task and queues nothing.
   */
  async createTask(
    queue: string,
    payload?: unknown,
    options: {
      meta?: Record<string, unknown>;
      idempotencyKey?: string;
      parentContextId?: number;
      detached?: boolean;
      worker?: string;
    } = {},
  ): Promise<CreatedTask> {
    await this.start();
    const meta = { ...(options.meta ?? {}), ...(options.detached ? { detached: true } : {}) };
    return this.store.createTask(
      {
        queue,
        payload,
        meta: Object.keys(meta).length ? meta : undefined,
        worker: options.worker ?? this.workerOf(queue) ?? null,
        parentContextId: options.parentContextId ?? null,
        idempotencyKey: options.idempotencyKey ?? null,
      },
      this.enqueue,
    );
  }

  /**
   * A cron schedule persisted by pg-boss in its schema: every occurrence sends one job (pg-boss
   * dedupes across instances), whose data becomes a new task's `:INITIAL` payload. `missed: 'once'`
   * sends the latest occurrence missed while no daemon ran.
   */
  async schedule(
    queue: string,
    cron: string,
    payload: object | null = null,
    options: ScheduleOptions = {},
  ): Promise<void> {
    await this.start();
    await this.boss.schedule(queue, cron, payload, options);
  }

  async unschedule(queue: string, key?: string): Promise<void> {
    await this.start();
    await this.boss.unschedule(queue, key);
  }

  /**
   * Adopts orphans: unfinished contexts of our queues that nobody holds (their run lock is free) and
   * that no job will run: no queued or retrying job, no job that just started, not dead-lettered.
   * Each gets a new job. Returns how many were adopted.
   */
  adoptOrphans(): Promise<number> {
    this.adopting ??= this.sweep().finally(() => {
      this.adopting = undefined;
    });
    return this.adopting;
  }

  private async sweep(): Promise<number> {
    if (this.queues.size === 0) return 0;
    const graceMs = (this.options.adoptGraceSeconds ?? 10) * 1000;
    const free = await this.store.unlockedUnfinished([...this.queues.keys()]);
    const suspects = new Map<string, number>();
    let adopted = 0;
    for (const c of free) {
      const jobs = await this.boss.findJobs<TaskJobData>(c.queue, {
        data: { etlContextId: c.etl_context_id },
      });
      const now = Date.now();
      const pending = jobs.some(
        (j) =>
          j.state === 'created' ||
          j.state === 'retry' ||
          (j.state === 'active' && now - new Date(j.startedOn).getTime() < graceMs),
      );
      if (pending) continue;
      // An active job past the grace on an unlocked context: its process died, or its task just
      // ended (lock released) and pg-boss has not recorded the outcome yet, which a busy machine can
      // take seconds to do (a job adopted then ran a failed task once more). It is adopted only
      // after looking so for a whole grace period.
      const active = jobs.find((j) => j.state === 'active');
      if (active && (this.options.adoptIntervalMs ?? 5000) > 0) {
        const since = this.suspects.get(active.id) ?? now;
        suspects.set(active.id, since);
        if (now - since < graceMs) continue;
      }
      const latest = jobs.sort((a, b) => +new Date(b.createdOn) - +new Date(a.createdOn))[0];
      if (latest?.state === 'failed' && !jobs.some((j) => j.state === 'active')) continue; // dead-lettered
      if (latest?.state === 'cancelled') continue;
      await this.boss.send(c.queue, { etlContextId: c.etl_context_id });
      adopted += 1;
      this.log.info({ etlContextId: c.etl_context_id, queue: c.queue, jobs: jobs.length }, 'orphan adopted');
    }
    this.suspects = suspects;
    return adopted;
  }

  /** Runs a context here and now (outside any job), e.g. from `run-task`. */
  runInProcess(
    etlContextId: number,
    options: { attempt?: number; signal?: AbortSignal } = {},
  ): Promise<RunResult> {
    return runTask(
      {
        pg: this.options.pg,
        store: this.store,
        enqueue: this.enqueue,
        workerOf: this.workerOf,
        log: this.log,
      },
      etlContextId,
      options,
    );
  }

  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    const errors: unknown[] = [];
    const step = async (what: string, fn: () => Promise<unknown>) => {
      try {
        await fn();
      } catch (err) {
        errors.push(err);
        this.log.warn({ err }, `stop: ${what} failed`);
      }
    };
    if (this.adoptTimer) clearInterval(this.adoptTimer);
    if (this.starting) {
      await step('start', () => this.starting!);
      await step('orphan sweep', () => this.adopting ?? Promise.resolve());
      // Workers drain (graceful, bounded); detached processes are left to finish on their own.
      const timeout = this.options.shutdownTimeoutMs ?? 8000;
      await step('pg-boss', () => this.boss.stop({ graceful: true, timeout, close: true }));
    }
    await step('pool', () => this.pool.end());
    if (errors.length) throw new AggregateError(errors, 'job runner stopped with errors');
    this.log.info('job runner stopped');
  }
}
