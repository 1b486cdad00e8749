import { AsyncLocalStorage } from 'node:async_hooks';
import type { Logger } from '../log.ts';
import { foldEvents, toFsa, type FsaEvent, type StoredEvent, type TaskState } from './events.ts';
import type { EtlContextRow, Enqueue, EventStore } from './store.ts';

export interface SubtaskOptions {
  /**
   * Unique among the parent's children: a retried parent that queues the same key gets the existing
   * child back instead of a duplicate. Default: the call's position in this run (`#0`, `#1`, ...),
   * which is stable as long as the worker queues its subtasks in a deterministic order.
   */
  idempotencyKey?: string;
  meta?: Record<string, unknown>;
  /** Worker module of the subtask; default: the one its queue is registered with. */
  worker?: string;
  /** Run the subtask in a detached process (stored in its `:INITIAL` meta). */
  detached?: boolean;
}

export interface SubtaskHandle {
  etlContextId: number;
  queue: string;
  idempotencyKey: string;
  /** false: this key already had a child (a retried parent), nothing new was queued. */
  created: boolean;
}

export interface SubtaskResult {
  etlContextId: number;
  idempotencyKey: string | null;
  /** The payload of the child's `:FINAL`. */
  payload: unknown;
}

export interface WaitOptions {
  pollMs?: number;
  timeoutMs?: number;
}

/** What a running task sees through AsyncLocalStorage. */
export interface TaskContext {
  readonly etlContextId: number;
  readonly queue: string;
  readonly parentContextId: number | null;
  readonly context: EtlContextRow;
  readonly initialEvent: FsaEvent;
  /** Every event of the context so far, including those of earlier attempts (resume from them). */
  readonly events: readonly StoredEvent[];
  /** pg-boss retry count of the job running it (0 when run by hand). */
  readonly attempt: number;
  /** Aborted when the job expires or the process is asked to stop. */
  readonly signal: AbortSignal;
  readonly log: Logger;
  /** Appends an event to this context (the database enforces the rules). */
  dispatch(event: FsaEvent): Promise<StoredEvent>;
  /** The fold of the events so far. */
  getState(): TaskState;
  queueSubtask(queue: string, payload?: unknown, options?: SubtaskOptions): Promise<SubtaskHandle>;
  /** Waits until the given children (default: every child of this context) are DONE. */
  waitForSubtasks(
    handles?: readonly (SubtaskHandle | number)[],
    options?: WaitOptions,
  ): Promise<SubtaskResult[]>;
}

// On globalThis: a worker that imports this module by another path (src vs dist, a copy in
// node_modules) still finds the context the runner entered.
const STORAGE_KEY = Symbol.for('tag-connector.jobrunner.context');
const storage: AsyncLocalStorage<TaskContext> = ((globalThis as Record<symbol, unknown>)[STORAGE_KEY] ??=
  new AsyncLocalStorage<TaskContext>()) as AsyncLocalStorage<TaskContext>;

export function runWithContext<T>(ctx: TaskContext, fn: () => T): T {
  return storage.run(ctx, fn);
}

/** The context of the task running in this async call chain; throws outside a task. */
export function getContext(): TaskContext {
  const ctx = storage.getStore();
  if (!ctx) throw new Error('not inside a task: getContext() works only in code a worker runs');
  return ctx;
}

export function tryGetContext(): TaskContext | undefined {
  return storage.getStore();
}

export const dispatch = (event: FsaEvent): Promise<StoredEvent> => getContext().dispatch(event);
export const getState = (): TaskState => getContext().getState();
export const queueSubtask = (
  queue: string,
  payload?: unknown,
  options?: SubtaskOptions,
): Promise<SubtaskHandle> => getContext().queueSubtask(queue, payload, options);
export const waitForSubtasks = (
  handles?: readonly (SubtaskHandle | number)[],
  options?: WaitOptions,
): Promise<SubtaskResult[]> => getContext().waitForSubtasks(handles, options);

export interface ContextDeps {
  store: EventStore;
  enqueue: Enqueue;
  /** Worker module of a queue, for subtasks queued without `worker`. */
  workerOf: (queue: string) => string | undefined;
  log: Logger;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/** Builds the context object of one run (the runner then enters it with `runWithContext`). */
export function createTaskContext(
  deps: ContextDeps,
  row: EtlContextRow,
  events: StoredEvent[],
  run: { attempt: number; signal: AbortSignal },
): TaskContext {
  const all = [...events];
  let subtaskSeq = 0;
  const ctx: TaskContext = {
    etlContextId: row.etl_context_id,
    queue: row.queue,
    parentContextId: row.parent_context_id,
    context: row,
    initialEvent: toFsa(all[0]!),
    get events() {
      return all;
    },
    attempt: run.attempt,
    signal: run.signal,
    log: deps.log.child({ etlContextId: row.etl_context_id, queue: row.queue }),
    async dispatch(event) {
      const stored = await deps.store.append(row.etl_context_id, event);
      all.push(stored);
      return stored;
    },
    getState: () => foldEvents(all.map(toFsa)),
    async queueSubtask(queue, payload, options = {}) {
      const key = options.idempotencyKey ?? `#${subtaskSeq}`;
      subtaskSeq += 1;
      const worker = options.worker ?? deps.workerOf(queue) ?? null;
      const meta = { ...(options.meta ?? {}), ...(options.detached ? { detached: true } : {}) };
      const { context, created } = await deps.store.createTask(
        {
          queue,
          payload,
          meta: Object.keys(meta).length ? meta : undefined,
          worker,
          parentContextId: row.etl_context_id,
          idempotencyKey: key,
        },
        deps.enqueue,
      );
      return { etlContextId: context.etl_context_id, queue, idempotencyKey: key, created };
    },
    async waitForSubtasks(handles, options = {}) {
      const ids = handles
        ? handles.map((h) => (typeof h === 'number' ? h : h.etlContextId))
        : (await deps.store.children(row.etl_context_id)).map((c) => c.etl_context_id);
      if (ids.length === 0) return [];
      const pollMs = options.pollMs ?? 250;
      const deadline = options.timeoutMs ? Date.now() + options.timeoutMs : Infinity;
      for (;;) {
        const rows = await deps.store.childFinals(ids);
        if (rows.length === ids.length && rows.every((r) => r.etl_status === 'DONE')) {
          const byId = new Map(rows.map((r) => [r.etl_context_id, r]));
          return ids.map((id) => ({
            etlContextId: id,
            idempotencyKey: byId.get(id)!.idempotency_key,
            payload: byId.get(id)!.final_payload,
          }));
        }
        if (Date.now() > deadline) {
          const open = rows.filter((r) => r.etl_status !== 'DONE').map((r) => r.etl_context_id);
          throw new Error(`subtasks not done after ${options.timeoutMs} ms: ${open.join(', ')}`);
        }
        await sleep(pollMs, run.signal);
      }
    },
  };
  return ctx;
}
