import type pg from 'pg';
import type { Db } from '../state/db.ts';
import {
  foldEvents,
  initialType,
  toFsa,
  type EtlStatus,
  type FsaEvent,
  type StoredEvent,
  type TaskState,
} from './events.ts';
import * as sql from './sql.ts';

export interface EtlContextRow {
  etl_context_id: number;
  parent_context_id: number | null;
  queue: string;
  worker: string | null;
  idempotency_key: string | null;
  etl_status: EtlStatus;
  initial_event_id: number | null;
  latest_event_id: number | null;
  created_at: Date;
  modified_at: Date;
}

/** Sends the pg-boss job of a new context inside the transaction that creates it. */
export type Enqueue = (tx: Db, queue: string, data: { etlContextId: number }) => Promise<void>;

export interface NewTask {
  queue: string;
  payload?: unknown;
  meta?: Record<string, unknown>;
  /** Module of the worker (absolute path or file: URL); stored so that any process can run the task. */
  worker?: string | null;
  parentContextId?: number | null;
  /** Unique per parent (per top level when there is no parent): a repeated call finds the first context. */
  idempotencyKey?: string | null;
}

export interface CreatedTask {
  context: EtlContextRow;
  /** false: the idempotency key found an existing context, nothing was inserted or queued. */
  created: boolean;
}

/** The event store over a pool: contexts, events, and the fold of a task's state. */
export class EventStore {
  readonly pool: pg.Pool;
  readonly schema: string;

  constructor(pool: pg.Pool, schema: string) {
    this.pool = pool;
    this.schema = schema;
  }

  private async q<R extends pg.QueryResultRow>(
    query: { text: string; values?: unknown[] },
    db: Db = this.pool,
  ) {
    return (await db.query<R>(query.text, query.values)).rows;
  }

  /**
   * Creates a context and its `<queue>:INITIAL` event, and (when `enqueue` is given) its job, in one
   * transaction: a context never exists without its first event, nor its job without its context.
   */
  async createTask(task: NewTask, enqueue?: Enqueue): Promise<CreatedTask> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const [inserted] = await this.q<EtlContextRow>(
        sql.insertContext(this.schema, {
          queue: task.queue,
          worker: task.worker ?? null,
          parentContextId: task.parentContextId ?? null,
          idempotencyKey: task.idempotencyKey ?? null,
        }),
        client,
      );
      if (!inserted) {
        await client.query('ROLLBACK');
        const [existing] = await this.q<EtlContextRow>(
          sql.findByIdempotencyKey(this.schema, task.parentContextId ?? null, task.idempotencyKey!),
        );
        if (!existing)
          throw new Error(`idempotency key ${task.idempotencyKey} conflicted but no context found`);
        return { context: existing, created: false };
      }
      const [initial] = await this.q<StoredEvent>(
        sql.insertEvent(this.schema, inserted.etl_context_id, {
          type: initialType(task.queue),
          payload: task.payload ?? null,
          ...(task.meta ? { meta: task.meta } : {}),
        }),
        client,
      );
      if (enqueue) await enqueue(client, task.queue, { etlContextId: inserted.etl_context_id });
      await client.query('COMMIT');
      return {
        context: {
          ...inserted,
          initial_event_id: initial!.event_id,
          latest_event_id: initial!.event_id,
        },
        created: true,
      };
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  async append(etlContextId: number, event: FsaEvent, db: Db = this.pool): Promise<StoredEvent> {
    const [row] = await this.q<StoredEvent>(sql.insertEvent(this.schema, etlContextId, event), db);
    return row!;
  }

  async context(etlContextId: number): Promise<EtlContextRow | undefined> {
    return (await this.q<EtlContextRow>(sql.selectContext(this.schema, etlContextId)))[0];
  }

  async events(etlContextId: number, limit: number | null = null): Promise<StoredEvent[]> {
    return this.q<StoredEvent>(sql.selectEvents(this.schema, etlContextId, limit));
  }

  async initialEvent(etlContextId: number): Promise<StoredEvent | undefined> {
    return (await this.q<StoredEvent>(sql.selectInitialEvent(this.schema, etlContextId)))[0];
  }

  async children(parentContextId: number): Promise<EtlContextRow[]> {
    return this.q<EtlContextRow>(sql.selectChildren(this.schema, parentContextId));
  }

  /** Status of each child, with its `:FINAL` payload once DONE. */
  async childFinals(ids: readonly number[]): Promise<
    {
      etl_context_id: number;
      etl_status: EtlStatus;
      idempotency_key: string | null;
      final_payload: unknown;
    }[]
  > {
    return this.q(sql.selectChildFinals(this.schema, ids));
  }

  async state(etlContextId: number): Promise<TaskState> {
    return foldEvents((await this.events(etlContextId)).map(toFsa));
  }

  async list(
    filter: sql.ListFilter = {},
  ): Promise<(EtlContextRow & { event_count: number; subtask_count: number })[]> {
    return this.q(sql.listContexts(this.schema, filter));
  }

  async countByStatus(): Promise<Record<EtlStatus, number>> {
    const out: Record<EtlStatus, number> = { OPEN: 0, DONE: 0, ERROR: 0 };
    for (const r of await this.q<{ etl_status: EtlStatus; n: number }>(sql.countByStatus(this.schema)))
      out[r.etl_status] = r.n;
    return out;
  }

  /** Unfinished contexts whose run lock is free right now (probed in a transaction rolled back at once). */
  async unlockedUnfinished(
    queues: readonly string[] | null,
    limit = 1000,
  ): Promise<{ etl_context_id: number; queue: string; etl_status: EtlStatus; modified_at: Date }[]> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const rows = await this.q<{
        etl_context_id: number;
        queue: string;
        etl_status: EtlStatus;
        modified_at: Date;
      }>(sql.selectUnlockedUnfinished(this.schema, queues, limit), client);
      await client.query('ROLLBACK');
      return rows;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  async initialFinalCounts(): Promise<
    { etl_context_id: number; etl_status: EtlStatus; initials: number; finals: number }[]
  > {
    return this.q(sql.initialFinalCounts(this.schema));
  }
}
