import { ident, type Query } from '../state/db.ts';
import type { FsaEvent } from './events.ts';

/**
 * Every statement of the job runner's own tables, as plain functions returning `{ text, values }`
 * (pg-boss `plans.ts` style). `schema` is the state schema, unquoted.
 */

const t = (schema: string, table: string) => `${ident(schema)}.${ident(table)}`;

export interface NewContext {
  queue: string;
  worker?: string | null;
  parentContextId?: number | null;
  idempotencyKey?: string | null;
}

/** Inserts a context, or nothing when the idempotency key is taken (then `findByIdempotencyKey`). */
export function insertContext(schema: string, c: NewContext): Query {
  return {
    text: `INSERT INTO ${t(schema, 'etl_context')} (queue, worker, parent_context_id, idempotency_key)
           VALUES ($1, $2, $3, $4)
           ON CONFLICT (coalesce(parent_context_id, 0), idempotency_key) WHERE idempotency_key IS NOT NULL
           DO NOTHING
           RETURNING *`,
    values: [c.queue, c.worker ?? null, c.parentContextId ?? null, c.idempotencyKey ?? null],
  };
}

export function findByIdempotencyKey(schema: string, parentContextId: number | null, key: string): Query {
  return {
    text: `SELECT * FROM ${t(schema, 'etl_context')}
           WHERE coalesce(parent_context_id, 0) = coalesce($1::int, 0) AND idempotency_key = $2`,
    values: [parentContextId, key],
  };
}

export function insertEvent(schema: string, etlContextId: number, e: FsaEvent): Query {
  return {
    text: `INSERT INTO ${t(schema, 'event_store')} (etl_context_id, type, payload, meta, error)
           VALUES ($1, $2, $3::jsonb, $4::jsonb, $5) RETURNING *`,
    values: [
      etlContextId,
      e.type,
      e.payload === undefined ? null : JSON.stringify(e.payload),
      e.meta === undefined ? null : JSON.stringify(e.meta),
      e.error === true,
    ],
  };
}

export function selectContext(schema: string, etlContextId: number): Query {
  return {
    text: `SELECT * FROM ${t(schema, 'etl_context')} WHERE etl_context_id = $1`,
    values: [etlContextId],
  };
}

/** `limit`: the first N events only (null: all of them). */
export function selectEvents(schema: string, etlContextId: number, limit: number | null = null): Query {
  return {
    text: `SELECT * FROM ${t(schema, 'event_store')} WHERE etl_context_id = $1 ORDER BY event_id LIMIT $2`,
    values: [etlContextId, limit],
  };
}

export function selectInitialEvent(schema: string, etlContextId: number): Query {
  return {
    text: `SELECT e.* FROM ${t(schema, 'etl_context')} c
           JOIN ${t(schema, 'event_store')} e ON e.event_id = c.initial_event_id
           WHERE c.etl_context_id = $1`,
    values: [etlContextId],
  };
}

/**
 * The run lock of a context: its `:INITIAL` row, `FOR UPDATE SKIP LOCKED`, held by the running
 * process's session (an open transaction) for the whole run. No row: locked elsewhere, or no such
 * context (tell them apart with `selectContext`).
 */
export function lockInitialEvent(schema: string, etlContextId: number): Query {
  return {
    text: `SELECT c.etl_status, e.event_id FROM ${t(schema, 'etl_context')} c
           JOIN ${t(schema, 'event_store')} e ON e.event_id = c.initial_event_id
           WHERE c.etl_context_id = $1
           FOR UPDATE OF e SKIP LOCKED`,
    values: [etlContextId],
  };
}

/**
 * Unfinished contexts nobody is running (their `:INITIAL` row lock is free): orphans, or contexts
 * simply waiting for their job. Run it in a transaction that is rolled back at once.
 */
export function selectUnlockedUnfinished(
  schema: string,
  queues: readonly string[] | null,
  limit: number,
): Query {
  return {
    text: `SELECT c.etl_context_id, c.queue, c.etl_status, c.modified_at FROM ${t(schema, 'etl_context')} c
           JOIN ${t(schema, 'event_store')} e ON e.event_id = c.initial_event_id
           WHERE c.etl_status <> 'DONE' AND ($1::text[] IS NULL OR c.queue = ANY($1::text[]))
           ORDER BY c.etl_context_id
           LIMIT $2
           FOR UPDATE OF e SKIP LOCKED`,
    values: [queues, limit],
  };
}

export function selectChildren(schema: string, parentContextId: number): Query {
  return {
    text: `SELECT * FROM ${t(schema, 'etl_context')} WHERE parent_context_id = $1 ORDER BY etl_context_id`,
    values: [parentContextId],
  };
}

export function selectChildFinals(schema: string, ids: readonly number[]): Query {
  return {
    text: `SELECT c.etl_context_id, c.etl_status, c.idempotency_key, e.payload AS final_payload
           FROM ${t(schema, 'etl_context')} c
           LEFT JOIN ${t(schema, 'event_store')} e ON e.event_id = c.latest_event_id AND c.etl_status = 'DONE'
           WHERE c.etl_context_id = ANY($1::int[])
           ORDER BY c.etl_context_id`,
    values: [ids],
  };
}

export interface ListFilter {
  status?: string;
  queue?: string;
  parentContextId?: number | null;
  limit?: number;
}

export function listContexts(schema: string, f: ListFilter = {}): Query {
  return {
    text: `SELECT c.*, (SELECT count(*)::int FROM ${t(schema, 'event_store')} e WHERE e.etl_context_id = c.etl_context_id) AS event_count,
                  (SELECT count(*)::int FROM ${t(schema, 'etl_context')} k WHERE k.parent_context_id = c.etl_context_id) AS subtask_count
           FROM ${t(schema, 'etl_context')} c
           WHERE ($1::text IS NULL OR c.etl_status = $1)
             AND ($2::text IS NULL OR c.queue = $2)
             AND ($3::boolean IS FALSE OR c.parent_context_id IS NOT DISTINCT FROM $4::int)
           ORDER BY c.etl_context_id DESC
           LIMIT $5`,
    values: [
      f.status ?? null,
      f.queue ?? null,
      f.parentContextId !== undefined,
      f.parentContextId ?? null,
      f.limit ?? 100,
    ],
  };
}

export function countByStatus(schema: string): Query {
  return {
    text: `SELECT etl_status, count(*)::int AS n FROM ${t(schema, 'etl_context')} GROUP BY etl_status`,
    values: [],
  };
}

/** Per context: how many `:INITIAL` and `:FINAL` events it has (the demo's end-state check). */
export function initialFinalCounts(schema: string): Query {
  return {
    text: `SELECT c.etl_context_id, c.etl_status,
                  count(*) FILTER (WHERE e.type LIKE '%:INITIAL')::int AS initials,
                  count(*) FILTER (WHERE e.type LIKE '%:FINAL')::int AS finals
           FROM ${t(schema, 'etl_context')} c
           LEFT JOIN ${t(schema, 'event_store')} e ON e.etl_context_id = c.etl_context_id
           GROUP BY c.etl_context_id, c.etl_status
           ORDER BY c.etl_context_id`,
    values: [],
  };
}
