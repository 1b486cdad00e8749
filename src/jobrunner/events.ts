/**
 * Events are Flux Standard Actions (https://github.com/redux-utilities/flux-standard-action):
 * `{ type, payload?, meta?, error? }`. A context's first event is `<queue>:INITIAL`, its last
 * `<queue>:FINAL`; an error event (`error: true`, payload = the serialized error) marks a failed
 * attempt. Everything here is pure: no I/O.
 */

export interface FsaEvent<P = unknown, M = unknown> {
  type: string;
  payload?: P;
  meta?: M;
  error?: boolean;
}

/** An event as stored in `event_store`. */
export interface StoredEvent<P = unknown> extends FsaEvent<P, Record<string, unknown> | null> {
  event_id: number;
  etl_context_id: number;
  error: boolean;
  created_at: Date | string;
}

export type EtlStatus = 'OPEN' | 'DONE' | 'ERROR';

export const INITIAL = 'INITIAL';
export const FINAL = 'FINAL';
export const ERROR = 'ERROR';

export const initialType = (queue: string): string => `${queue}:${INITIAL}`;
export const finalType = (queue: string): string => `${queue}:${FINAL}`;
export const errorType = (queue: string): string => `${queue}:${ERROR}`;

export const isInitial = (e: Pick<FsaEvent, 'type'>): boolean => e.type.endsWith(`:${INITIAL}`);
export const isFinal = (e: Pick<FsaEvent, 'type'>): boolean => e.type.endsWith(`:${FINAL}`);

/** The queue an `<queue>:<ACTION>` type belongs to (`undefined` for a type without a colon). */
export function queueOfType(type: string): string | undefined {
  const at = type.lastIndexOf(':');
  return at > 0 ? type.slice(0, at) : undefined;
}

export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
  code?: string;
}

export function serializeError(err: unknown): SerializedError {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return {
      name: err.name,
      message: err.message,
      ...(err.stack ? { stack: err.stack } : {}),
      ...(typeof code === 'string' ? { code } : {}),
    };
  }
  return { name: 'Error', message: typeof err === 'string' ? err : JSON.stringify(err) };
}

/**
 * What a worker's return value becomes (docs/design.md §5: a worker may dispatch its `:FINAL` itself, or
 * return it, or return its payload). `undefined` when the worker already dispatched `:FINAL`.
 */
export function finalEventFrom(
  queue: string,
  returned: unknown,
  alreadyFinal: boolean,
): FsaEvent | undefined {
  if (alreadyFinal) return undefined;
  if (
    returned !== null &&
    typeof returned === 'object' &&
    typeof (returned as FsaEvent).type === 'string' &&
    (returned as FsaEvent).type === finalType(queue)
  ) {
    const r = returned as FsaEvent;
    return { type: r.type, payload: r.payload, ...(r.meta !== undefined ? { meta: r.meta } : {}) };
  }
  return { type: finalType(queue), payload: returned === undefined ? null : returned };
}

/** A task's state, rebuilt from its events alone (routes and runners keep none of their own). */
export interface TaskState<I = unknown, F = unknown> {
  status: EtlStatus | 'EMPTY';
  queue?: string;
  initial?: FsaEvent<I>;
  final?: FsaEvent<F>;
  /** The latest error event, cleared by nothing: look at `status` to know if it still applies. */
  lastError?: FsaEvent;
  /** Error events seen: failed attempts. */
  errors: number;
  /** Events that are neither `:INITIAL`, `:FINAL` nor errors, in order (progress, checkpoints). */
  progress: FsaEvent[];
  /** The payload of the latest progress event of each type: what a resuming worker continues from. */
  latest: Record<string, unknown>;
  eventCount: number;
  /** Set when the events break the rules the database enforces (a corrupt or hand-edited store). */
  invalid?: string;
}

export function emptyState<I = unknown, F = unknown>(): TaskState<I, F> {
  return { status: 'EMPTY', errors: 0, progress: [], latest: {}, eventCount: 0 };
}

/** One step of the fold: the same rules as the database trigger, as a pure reducer. */
export function reduceTask<I, F>(state: TaskState<I, F>, event: FsaEvent): TaskState<I, F> {
  const next: TaskState<I, F> = { ...state, eventCount: state.eventCount + 1 };
  if (state.invalid) return next;
  if (state.status === 'EMPTY') {
    if (!isInitial(event) || event.error) return { ...next, invalid: `first event is ${event.type}` };
    return { ...next, status: 'OPEN', queue: queueOfType(event.type)!, initial: event as FsaEvent<I> };
  }
  if (state.status === 'DONE') return { ...next, invalid: `event ${event.type} after :FINAL` };
  if (isInitial(event)) return { ...next, invalid: 'a second :INITIAL' };
  if (isFinal(event)) {
    if (event.error || event.type !== finalType(state.queue!))
      return { ...next, invalid: `bad final event ${event.type}` };
    return { ...next, status: 'DONE', final: event as FsaEvent<F> };
  }
  if (event.error) return { ...next, status: 'ERROR', errors: state.errors + 1, lastError: event };
  return {
    ...next,
    status: 'OPEN',
    progress: [...state.progress, event],
    latest: { ...state.latest, [event.type]: event.payload },
  };
}

export function foldEvents<I = unknown, F = unknown>(events: Iterable<FsaEvent>): TaskState<I, F> {
  let state = emptyState<I, F>();
  for (const e of events) state = reduceTask(state, e);
  return state;
}

/** The FSA view of a stored event (what workers and the extractor's `etl_context.event` carry). */
export function toFsa(e: StoredEvent): FsaEvent {
  return {
    type: e.type,
    ...(e.payload !== null && e.payload !== undefined ? { payload: e.payload } : {}),
    ...(e.meta !== null && e.meta !== undefined ? { meta: e.meta } : {}),
    ...(e.error ? { error: true } : {}),
  };
}
