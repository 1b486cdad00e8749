import { CronExpressionParser } from 'cron-parser';

/**
 * The job chronology as pure functions (no clock, no I/O): which run may start given the runs so
 * far, the status machine of a run, and the next cron time. The job manager asks these; the unit
 * tests pin them.
 */

export const JOB_KINDS = ['initial-sync', 'healing', 'dump'] as const;
export type JobKind = (typeof JOB_KINDS)[number];

export const JOB_STATUSES = ['scheduled', 'busy', 'success', 'failed', 'canceled'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

export type Trigger = 'start' | 'cron' | 'api';

export interface ChronologyOptions {
  enableHealing: boolean;
  enableDump: boolean;
  healMustWaitForInitialSync: boolean;
}

/** What the rules need to know about a run. */
export interface RunFacts {
  kind: JobKind;
  status: JobStatus;
}

export type Refusal = 'disabled' | 'overlap' | 'needs-initial-sync' | 'store-busy';

export type Admission = { ok: true } | { ok: false; code: Refusal; reason: string };

const ACTIVE: readonly JobStatus[] = ['scheduled', 'busy'];
/** Kinds that write the snapshot store; at most one of them is active at a time. */
const WRITERS: readonly JobKind[] = ['initial-sync', 'healing'];

export function isActive(status: JobStatus): boolean {
  return ACTIVE.includes(status);
}

export function isFinal(status: JobStatus): boolean {
  return !isActive(status);
}

/**
 * May a run of `kind` be scheduled now? Rules, in order:
 *  1. healing / dump only when enabled (ENABLE_HEALING_JOB_OPERATION, ENABLE_DUMP_FILE_CREATION);
 *  2. no two runs of one kind at once (a scheduled or busy run blocks another);
 *  3. healing never before a successful initial sync, unless HEAL_MUST_WAIT_FOR_INITIAL_SYNC=false;
 *  4. initial sync and healing both write the store, so one never starts while the other is active.
 * Dump only reads the store and may run beside either.
 */
export function admit(kind: JobKind, runs: readonly RunFacts[], opts: ChronologyOptions): Admission {
  if (kind === 'healing' && !opts.enableHealing)
    return refuse('disabled', 'healing jobs are disabled (ENABLE_HEALING_JOB_OPERATION=false)');
  if (kind === 'dump' && !opts.enableDump)
    return refuse('disabled', 'dump jobs are disabled (ENABLE_DUMP_FILE_CREATION=false)');
  if (runs.some((r) => r.kind === kind && isActive(r.status)))
    return refuse('overlap', `a ${kind} run is already scheduled or busy`);
  if (
    kind === 'healing' &&
    opts.healMustWaitForInitialSync &&
    !runs.some((r) => r.kind === 'initial-sync' && r.status === 'success')
  )
    return refuse(
      'needs-initial-sync',
      'healing waits for a successful initial sync (HEAL_MUST_WAIT_FOR_INITIAL_SYNC=true)',
    );
  if (WRITERS.includes(kind)) {
    const other = runs.find((r) => r.kind !== kind && WRITERS.includes(r.kind) && isActive(r.status));
    if (other)
      return refuse('store-busy', `a ${other.kind} run is ${other.status}; it writes the same store`);
  }
  return { ok: true };
}

function refuse(code: Refusal, reason: string): Admission {
  return { ok: false, code, reason };
}

/** Allowed status changes of one run. */
const TRANSITIONS: Record<JobStatus, readonly JobStatus[]> = {
  scheduled: ['busy', 'canceled', 'failed'],
  busy: ['success', 'failed', 'canceled'],
  success: [],
  failed: [],
  canceled: [],
};

export function canTransition(from: JobStatus, to: JobStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

export function transition(from: JobStatus, to: JobStatus): JobStatus {
  if (!canTransition(from, to)) throw new Error(`a job run cannot go from ${from} to ${to}`);
  return to;
}

/**
 * Runs a previous process left active (it stopped during the run): they become `failed` with this
 * reason, so nothing stays busy forever and the chronology counts them as not successful.
 */
export const INTERRUPTED_REASON = 'interrupted: the process stopped during the run';

/** Validates a cron pattern (5 fields, or 6 with seconds first); throws a readable error. */
export function parseCron(pattern: string): void {
  const fields = pattern.trim().split(/\s+/).length;
  if (fields !== 5 && fields !== 6)
    throw new Error(`expected a cron pattern of 5 or 6 fields, got ${fields}: ${JSON.stringify(pattern)}`);
  try {
    CronExpressionParser.parse(pattern, { tz: 'UTC' });
  } catch (err) {
    throw new Error(`invalid cron pattern ${JSON.stringify(pattern)}: ${(err as Error).message}`);
  }
}

/** The first time strictly after `after` that matches the pattern (UTC). */
export function nextCronTime(pattern: string, after: Date): Date {
  return CronExpressionParser.parse(pattern, { currentDate: after, tz: 'UTC' }).next().toDate();
}
