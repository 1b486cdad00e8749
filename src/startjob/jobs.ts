import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from '../log.ts';
import {
  admit,
  INTERRUPTED_REASON,
  isActive,
  nextCronTime,
  parseCron,
  transition,
  type Admission,
  type ChronologyOptions,
  type JobKind,
  type JobStatus,
  type RunFacts,
  type Trigger,
} from './chronology.ts';
import type { SnapshotCounts } from './events.ts';
import type { JobRunDoc, SnapshotStore } from './store.ts';

/**
 * Schedules and runs the start-job jobs (initial sync, healing, dump) by the chronology rules: cron
 * timers for healing and dump, the initial sync at start when enabled, and requests from the job API.
 * Every run is recorded in the store (status, timings, counts, error) and, through `hooks`, as an ETL
 * context of the job runner. Runs left active by a process that died are marked failed at start.
 */

export interface RunOutcome {
  counts?: SnapshotCounts;
  result?: Record<string, unknown>;
}

export type Executor = (run: Readonly<JobRunDoc>, signal: AbortSignal) => Promise<RunOutcome>;

/** Where a run is recorded besides the store: the job runner's ETL contexts (`:INITIAL` … `:FINAL`). */
export interface RunHooks {
  begin(run: Readonly<JobRunDoc>): Promise<string | number | undefined>;
  end(run: Readonly<JobRunDoc>): Promise<void>;
}

export interface JobManagerOptions extends ChronologyOptions {
  store: SnapshotStore;
  executors: Record<JobKind, Executor>;
  logger: Logger;
  startInitialSync: boolean;
  cronHealing?: string;
  cronDump?: string;
  /** Healing runs emit every item. */
  full: boolean;
  hooks?: RunHooks | null;
  /**
   * Lease of a running kind in the store, renewed every third of it: instances sharing one store never
   * overlap, and a run whose instance died is found interrupted once its lease expired. Default 30 s.
   */
  leaseMs?: number;
  now?: () => Date;
}

/** An abort that ends the run as failed rather than canceled (its lease was lost). */
class RunFailure extends Error {}

export type RequestResult = { ok: true; run: JobRunDoc } | Extract<Admission, { ok: false }>;

export class JobManager {
  private readonly opts: JobManagerOptions;
  private readonly active = new Map<
    string,
    { run: JobRunDoc; abort: AbortController; done: Promise<void> }
  >();
  private readonly timers = new Map<JobKind, NodeJS.Timeout>();
  private readonly nextAt = new Map<JobKind, Date>();
  private readonly lastRefusal = new Map<JobKind, { at: Date; reason: string }>();
  private initialSyncSucceeded = false;
  private started = false;
  private stopping = false;
  /** This instance: host, pid and a random part (a restarted container often has the same pid). */
  readonly owner = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  private readonly leaseMs: number;
  private readonly now: () => Date;

  constructor(opts: JobManagerOptions) {
    if (opts.cronHealing) parseCron(opts.cronHealing);
    if (opts.cronDump) parseCron(opts.cronDump);
    this.opts = opts;
    this.now = opts.now ?? (() => new Date());
    this.leaseMs = opts.leaseMs ?? 30_000;
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.stopping = false;
    await this.recoverInterrupted();
    await this.sweep();
    this.initialSyncSucceeded = await this.opts.store.hasSuccessfulInitialSync();
    if (this.opts.cronHealing && this.opts.enableHealing) this.arm('healing', this.opts.cronHealing);
    if (this.opts.cronDump && this.opts.enableDump) this.arm('dump', this.opts.cronDump);
    if (this.opts.startInitialSync) {
      const r = await this.request('initial-sync', 'start');
      if (!r.ok) this.opts.logger.warn({ reason: r.reason }, 'initial sync at start refused');
    }
  }

  /** Stops the timers, cancels active runs and waits for them (bounded). Idempotent. */
  async stop(timeoutMs = 10_000): Promise<void> {
    if (!this.started) return;
    this.stopping = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    this.nextAt.clear();
    const pending = [...this.active.values()];
    for (const a of pending) a.abort.abort(new Error('the process is stopping'));
    await Promise.race([
      Promise.allSettled(pending.map((a) => a.done)),
      new Promise((r) => setTimeout(r, timeoutMs).unref()),
    ]);
    this.started = false;
  }

  /**
   * Runs the store shows active but whose instance is gone (its lease expired or was never taken)
   * become `failed` (interrupted). Returns the active runs of other, live instances.
   */
  async recoverInterrupted(): Promise<JobRunDoc[]> {
    const alive: JobRunDoc[] = [];
    const now = this.now();
    for (const run of await this.opts.store.activeRuns()) {
      if (this.active.has(run._id)) continue;
      if (run.owner !== this.owner) {
        const lease = await this.opts.store.lease(leaseName(run.kind));
        if (lease && lease.owner === run.owner && lease.expiresAt > now) {
          alive.push(run);
          continue;
        }
      }
      // Conditional: a run that ended meanwhile (its lease released after its final status) stays as is.
      if (await this.opts.store.markInterrupted(run._id, INTERRUPTED_REASON, now)) {
        this.opts.logger.warn(
          { run: run._id, kind: run.kind, owner: run.owner },
          'marked a run of a dead instance failed (interrupted)',
        );
        // Its ETL context gets its error event too.
        await this.opts.hooks
          ?.end({ ...run, status: 'failed', error: INTERRUPTED_REASON, finishedAt: now })
          .catch((err: unknown) => this.opts.logger.warn({ err, run: run._id }, 'job runner hook failed'));
      }
    }
    return alive;
  }

  /** Facts the chronology rules look at: our runs, other live instances' runs, the sync state. */
  private facts(foreign: readonly JobRunDoc[] = []): RunFacts[] {
    const facts: RunFacts[] = [...this.active.values(), ...foreign.map((run) => ({ run }))].map((a) => ({
      kind: a.run.kind,
      status: a.run.status,
    }));
    if (this.initialSyncSucceeded) facts.push({ kind: 'initial-sync', status: 'success' });
    return facts;
  }

  /** Schedules a run if the chronology admits it; it starts at once, in the background. */
  async request(kind: JobKind, trigger: Trigger): Promise<RequestResult> {
    if (this.stopping) return { ok: false, code: 'disabled', reason: 'the process is stopping' };
    const foreign = await this.recoverInterrupted();
    if (!this.initialSyncSucceeded && kind === 'healing')
      this.initialSyncSucceeded = await this.opts.store.hasSuccessfulInitialSync();
    // From here to `active.set` nothing awaits: two requests in this process cannot both pass.
    const verdict = admit(kind, this.facts(foreign), this.opts);
    if (!verdict.ok) {
      this.lastRefusal.set(kind, { at: this.now(), reason: verdict.reason });
      return verdict;
    }
    const at = this.now();
    const run: JobRunDoc = {
      _id: `${kind}-${at.toISOString().replace(/[-:.]/g, '').replace('T', '-').slice(0, 15)}-${randomBytes(3).toString('hex')}`,
      kind,
      status: 'scheduled',
      trigger,
      full: kind === 'initial-sync' ? true : kind === 'healing' ? this.opts.full : false,
      scheduledAt: at,
      startedAt: null,
      finishedAt: null,
      counts: null,
      error: null,
      result: null,
      etlContextId: null,
      owner: this.owner,
    };
    const abort = new AbortController();
    const entry = { run, abort, done: Promise.resolve() };
    this.active.set(run._id, entry);
    let leases: string[] = [];
    try {
      // Between instances, the leases decide (atomically in the store).
      const taken = await this.takeLeases(run);
      if (!taken.ok) {
        this.active.delete(run._id);
        this.lastRefusal.set(kind, { at: this.now(), reason: taken.reason });
        return { ok: false, code: taken.code, reason: taken.reason };
      }
      leases = taken.names;
      await this.opts.store.saveRun(run);
    } catch (err) {
      this.active.delete(run._id);
      await this.releaseLeases(leases);
      throw err;
    }
    entry.done = this.execute(entry, leases);
    return { ok: true, run: { ...run } };
  }

  private async takeLeases(
    run: JobRunDoc,
  ): Promise<{ ok: true; names: string[] } | { ok: false; code: 'overlap' | 'store-busy'; reason: string }> {
    const names = [leaseName(run.kind), ...(run.kind === 'dump' ? [] : [STORE_WRITER])];
    const held: string[] = [];
    for (const name of names) {
      const r = await this.opts.store.acquireLease(name, this.owner, run._id, this.leaseMs);
      if (!r.ok) {
        await this.releaseLeases(held);
        const by = r.holder ? `run ${r.holder.runId} of instance ${r.holder.owner}` : 'another instance';
        return name === STORE_WRITER
          ? { ok: false, code: 'store-busy', reason: `the snapshot store is being written by ${by}` }
          : { ok: false, code: 'overlap', reason: `a ${run.kind} run is already running: ${by}` };
      }
      held.push(name);
    }
    return { ok: true, names: held };
  }

  private async releaseLeases(names: readonly string[]): Promise<void> {
    for (const name of names)
      await this.opts.store.releaseLease(name, this.owner).catch((err: unknown) => {
        this.opts.logger.warn({ err, lease: name }, 'could not release a lease (it will expire)');
      });
  }

  /** Renews the leases of a run and picks up a cancel asked by another instance. */
  private heartbeat(
    entry: { run: JobRunDoc; abort: AbortController },
    leases: readonly string[],
  ): NodeJS.Timeout {
    const timer = setInterval(
      () => {
        void (async () => {
          for (const name of leases)
            if (!(await this.opts.store.renewLease(name, this.owner, this.leaseMs)))
              entry.abort.abort(
                new RunFailure(`lost the lease ${name} (the store was unreachable too long?)`),
              );
          if ((await this.opts.store.getRun(entry.run._id))?.cancelRequested)
            entry.abort.abort(new Error('canceled through the job API (of another instance)'));
        })().catch((err: unknown) =>
          this.opts.logger.warn({ err, run: entry.run._id }, 'lease renewal failed'),
        );
      },
      Math.max(200, Math.floor(this.leaseMs / 3)),
    );
    timer.unref();
    return timer;
  }

  /** Cancels the scheduled or busy runs of a kind; returns them. */
  async cancel(kind: JobKind): Promise<JobRunDoc[]> {
    const hit = [...this.active.values()].filter((a) => a.run.kind === kind);
    for (const a of hit) a.abort.abort(new Error('canceled through the job API'));
    await Promise.allSettled(hit.map((a) => a.done));
    // Runs of other instances: they cancel at their next heartbeat.
    const foreign = (await this.recoverInterrupted()).filter((r) => r.kind === kind);
    await this.opts.store.requestCancel(foreign.map((r) => r._id));
    return [...hit.map((a) => ({ ...a.run })), ...foreign.map((r) => ({ ...r, cancelRequested: true }))];
  }

  private async execute(
    entry: { run: JobRunDoc; abort: AbortController },
    leases: readonly string[],
  ): Promise<void> {
    const { run, abort } = entry;
    const beat = this.heartbeat(entry, leases);
    const log = this.opts.logger.child({ run: run._id, kind: run.kind });
    const set = async (status: JobStatus, patch: Partial<JobRunDoc> = {}) => {
      run.status = transition(run.status, status);
      Object.assign(run, patch);
      await this.opts.store.saveRun(run);
    };
    try {
      await new Promise((r) => setImmediate(r));
      abort.signal.throwIfAborted();
      run.etlContextId = (await this.opts.hooks?.begin(run)) ?? null;
      await set('busy', { startedAt: this.now() });
      log.info('job run started');
      const outcome = await this.opts.executors[run.kind](run, abort.signal);
      abort.signal.throwIfAborted();
      if (run.kind === 'initial-sync') this.initialSyncSucceeded = true;
      await set('success', {
        finishedAt: this.now(),
        counts: outcome.counts ?? null,
        result: outcome.result ?? null,
      });
      log.info({ counts: outcome.counts, result: outcome.result }, 'job run succeeded');
    } catch (err) {
      const canceled = abort.signal.aborted && !(abort.signal.reason instanceof RunFailure);
      const reason = abort.signal.aborted
        ? String((abort.signal.reason as Error)?.message ?? 'canceled')
        : describe(err);
      try {
        await set(canceled ? 'canceled' : 'failed', { finishedAt: this.now(), error: reason });
      } catch (saveErr) {
        log.error({ err: saveErr }, 'could not record the end of a job run');
      }
      if (canceled) log.warn({ reason }, 'job run canceled');
      else log.error({ reason }, 'job run failed');
    } finally {
      clearInterval(beat);
      this.active.delete(run._id);
      await this.releaseLeases(leases);
      await this.sweep();
      await this.opts.hooks?.end(run).catch((err: unknown) => log.error({ err }, 'job runner hook failed'));
    }
  }

  /** Drops staging collections of runs no longer active (here or, per the store, elsewhere). */
  private async sweep(): Promise<void> {
    const keep = async () => [
      ...this.active.keys(),
      ...(await this.opts.store.activeRuns()).map((r) => r._id),
    ];
    const dropped = await keep()
      .then((ids) => this.opts.store.sweepStaging(ids))
      .catch((err: unknown) => {
        this.opts.logger.warn({ err }, 'could not sweep staging collections');
        return [];
      });
    if (dropped.length) this.opts.logger.info({ dropped }, 'dropped leftover staging collections');
  }

  private arm(kind: JobKind, pattern: string): void {
    if (this.stopping) return;
    const at = nextCronTime(pattern, this.now());
    this.nextAt.set(kind, at);
    // Long delays are re-armed in steps (setTimeout caps at ~24.8 days).
    const delay = Math.min(Math.max(0, at.getTime() - this.now().getTime()), 2 ** 31 - 1);
    const timer = setTimeout(() => {
      if (this.now() < at) return this.arm(kind, pattern);
      this.request(kind, 'cron')
        .then((r) => {
          if (!r.ok) this.opts.logger.info({ kind, reason: r.reason }, 'scheduled run skipped');
        })
        .catch((err: unknown) => this.opts.logger.error({ err, kind }, 'scheduling a run failed'))
        .finally(() => this.arm(kind, pattern));
    }, delay);
    timer.unref();
    this.timers.set(kind, timer);
  }

  /** For GET /jobs: recent runs and, per kind, the next cron time and the last refusal. */
  async overview(limit = 50): Promise<{
    runs: JobRunDoc[];
    kinds: Record<
      JobKind,
      { active: boolean; next: Date | null; lastRefusal: { at: Date; reason: string } | null }
    >;
    initialSyncSucceeded: boolean;
  }> {
    const runs = await this.opts.store.listRuns(limit);
    // The in-memory copy of an active run is the freshest.
    const merged = runs.map((r) => this.active.get(r._id)?.run ?? r);
    const kind = (k: JobKind) => ({
      active: [...this.active.values()].some((a) => a.run.kind === k && isActive(a.run.status)),
      next: this.nextAt.get(k) ?? null,
      lastRefusal: this.lastRefusal.get(k) ?? null,
    });
    return {
      runs: merged,
      kinds: { 'initial-sync': kind('initial-sync'), healing: kind('healing'), dump: kind('dump') },
      initialSyncSucceeded: this.initialSyncSucceeded,
    };
  }

  /** Resolves when no run is active (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.active.size) await Promise.allSettled([...this.active.values()].map((a) => a.done));
  }
}

const STORE_WRITER = 'store-writer';
const leaseName = (kind: JobKind) => `kind:${kind}`;

function describe(err: unknown): string {
  const e = err as Error;
  return e?.message ? e.message : String(err);
}
