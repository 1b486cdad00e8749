import { isAbsolute } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import * as sql from './sql.ts';
import { createTaskContext, runWithContext, type ContextDeps } from './context.ts';
import { errorType, finalEventFrom, foldEvents, serializeError, toFsa, type FsaEvent } from './events.ts';

/**
 * Exit codes of `tag-connector run-task` (and the outcomes of an in-process run).
 * 1 (unexpected error) and 2 (bad configuration) are the CLI's own.
 */
export const EXIT_DONE = 0;
export const EXIT_FAILED = 3;
export const EXIT_LOCKED = 4;
export const EXIT_NOT_FOUND = 5;

export type RunOutcome = 'done' | 'failed' | 'locked' | 'not_found';

export const EXIT_CODES: Record<RunOutcome, number> = {
  done: EXIT_DONE,
  failed: EXIT_FAILED,
  locked: EXIT_LOCKED,
  not_found: EXIT_NOT_FOUND,
};

export function outcomeOfExitCode(code: number | null): RunOutcome | undefined {
  return (Object.entries(EXIT_CODES) as [RunOutcome, number][]).find(([, c]) => c === code)?.[0];
}

export interface RunResult {
  outcome: RunOutcome;
  etlContextId: number;
  /** The error the worker threw (outcome 'failed'). */
  error?: unknown;
  /** The `:FINAL` event (outcome 'done'). */
  final?: FsaEvent;
  /** false when the context was already DONE and nothing ran. */
  ran: boolean;
}

/** A worker module: `export default (initialEvent) => result | Promise<result>`. */
export type WorkerMain = (initialEvent: FsaEvent) => unknown;

export interface RunTaskDeps extends ContextDeps {
  /** Settings of the dedicated connection that holds the run lock for the whole run. */
  pg: pg.ClientConfig;
}

export interface RunTaskOptions {
  attempt?: number;
  signal?: AbortSignal;
}

/** Loads a worker's default export (absolute path, file: URL, or a module specifier). */
export async function loadWorker(spec: string): Promise<WorkerMain> {
  const url = isAbsolute(spec) ? pathToFileURL(spec).href : spec;
  const mod = (await import(url)) as { default?: unknown };
  if (typeof mod.default !== 'function') throw new Error(`worker ${spec} has no default export function`);
  return mod.default as WorkerMain;
}

/**
 * Runs one task to its end, in this process: locks the context's `:INITIAL` row
 * (`FOR UPDATE SKIP LOCKED`, on a dedicated session held for the run), rebuilds what happened so far
 * from the event store, calls the worker with the `:INITIAL` event inside the context's
 * AsyncLocalStorage, and stores the `:FINAL` it dispatched or returned, or an error event.
 */
export async function runTask(
  deps: RunTaskDeps,
  etlContextId: number,
  options: RunTaskOptions = {},
): Promise<RunResult> {
  const { store, log } = deps;
  const lock = new pg.Client({ ...deps.pg, application_name: `tag-connector run-task ${etlContextId}` });
  lock.on('error', (err) => log.warn({ err, etlContextId }, 'run lock connection error'));
  await lock.connect();
  try {
    // The lock is an open transaction for the whole run: never let the server cut it as idle.
    await lock.query('SET idle_in_transaction_session_timeout = 0');
    await lock.query('BEGIN');
    const locked = (await lock.query(sql.lockInitialEvent(store.schema, etlContextId))).rows[0] as
      { etl_status: string } | undefined;
    if (!locked) {
      const row = await store.context(etlContextId);
      if (!row || row.initial_event_id === null) return { outcome: 'not_found', etlContextId, ran: false };
      if (row.etl_status === 'DONE') return { outcome: 'done', etlContextId, ran: false };
      return { outcome: 'locked', etlContextId, ran: false };
    }
    // The lock is ours: what we read now cannot change under us except by our own writes.
    const row = (await store.context(etlContextId))!;
    const events = await store.events(etlContextId);
    const before = foldEvents(events.map(toFsa));
    if (row.etl_status === 'DONE') return { outcome: 'done', etlContextId, final: before.final, ran: false };
    if (!row.worker && !deps.workerOf(row.queue)) {
      throw new Error(`etl_context ${etlContextId}: no worker for queue ${row.queue}`);
    }
    const main = await loadWorker(row.worker ?? deps.workerOf(row.queue)!);
    const signal = options.signal ?? new AbortController().signal;
    const ctx = createTaskContext(deps, row, events, { attempt: options.attempt ?? 0, signal });
    ctx.log.debug({ resumedFrom: events.length }, 'task started');
    try {
      const returned = await runWithContext(ctx, () => main(ctx.initialEvent));
      const state = ctx.getState();
      const final = finalEventFrom(row.queue, returned, state.status === 'DONE');
      if (final) await ctx.dispatch(final);
      ctx.log.debug('task done');
      return { outcome: 'done', etlContextId, final: final ?? state.final, ran: true };
    } catch (err) {
      if (ctx.getState().status === 'DONE') {
        ctx.log.warn({ err }, 'worker threw after its :FINAL; the task stays DONE');
        return { outcome: 'done', etlContextId, final: ctx.getState().final, ran: true };
      }
      await ctx.dispatch({
        type: errorType(row.queue),
        payload: serializeError(err),
        meta: { attempt: ctx.attempt },
        error: true,
      });
      ctx.log.info({ err: serializeError(err), attempt: ctx.attempt }, 'task failed');
      return { outcome: 'failed', etlContextId, error: err, ran: true };
    }
  } finally {
    await lock.query('ROLLBACK').catch(() => undefined);
    await lock.end().catch(() => undefined);
  }
}
