import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { EventStore } from '../../jobrunner/store.ts';

/**
 * Read-only views of the job runner's event store (docs/design.md §5): ETL contexts filtered by
 * status and queue, one context with its folded state, and its event timeline. Public, documented
 * routes: the console reads them like any other client. Role `admin`: task payloads span every
 * workspace, as /info does. Registered by both daemons; when a daemon
 * has no event store (start-job without Postgres) or its tables were never migrated, they answer 404.
 */
export interface EtlContextRoutesOptions {
  store: EventStore | undefined;
}

const errorSchema = {
  type: 'object',
  required: ['error', 'message'],
  properties: { error: { type: 'string' }, message: { type: 'string' } },
} as const;

const statusEnum = ['OPEN', 'DONE', 'ERROR'] as const;
const dateTime = { type: 'string', format: 'date-time' } as const;

const contextSchema = {
  type: 'object',
  required: ['id', 'queue', 'status', 'createdAt', 'modifiedAt'],
  properties: {
    id: { type: 'integer' },
    parentId: { type: ['integer', 'null'] },
    queue: { type: 'string' },
    status: { type: 'string', enum: [...statusEnum] },
    worker: { type: ['string', 'null'] },
    idempotencyKey: { type: ['string', 'null'] },
    initialEventId: { type: ['integer', 'null'] },
    latestEventId: { type: ['integer', 'null'] },
    createdAt: dateTime,
    modifiedAt: dateTime,
    eventCount: { type: 'integer' },
    subtaskCount: { type: 'integer' },
  },
} as const;

const eventSchema = {
  type: 'object',
  required: ['id', 'contextId', 'type', 'error', 'createdAt'],
  properties: {
    id: { type: 'integer' },
    contextId: { type: 'integer' },
    type: { type: 'string' },
    payload: {},
    meta: { type: ['object', 'null'], additionalProperties: true },
    error: { type: 'boolean' },
    createdAt: dateTime,
  },
} as const;

const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: '^[0-9]{1,10}$' } },
} as const;

// Query strings stay strings (the extract-tasks app does not coerce types): numbers are patterns.
const limitSchema = { type: 'string', pattern: '^[0-9]{1,5}$' } as const;

/** A limit from the query string, clamped to [1, max]. */
export function parseLimit(raw: string | undefined, fallback: number, max: number): number {
  if (raw === undefined) return fallback;
  return Math.min(max, Math.max(1, Number(raw)));
}

interface ContextRowLike {
  etl_context_id: number;
  parent_context_id: number | null;
  queue: string;
  worker: string | null;
  idempotency_key: string | null;
  etl_status: string;
  initial_event_id: number | null;
  latest_event_id: number | null;
  created_at: Date;
  modified_at: Date;
  event_count?: number;
  subtask_count?: number;
}

const iso = (d: Date | string) => new Date(d).toISOString();

export function contextView(r: ContextRowLike) {
  return {
    id: r.etl_context_id,
    parentId: r.parent_context_id,
    queue: r.queue,
    status: r.etl_status,
    worker: r.worker,
    idempotencyKey: r.idempotency_key,
    initialEventId: r.initial_event_id,
    latestEventId: r.latest_event_id,
    createdAt: iso(r.created_at),
    modifiedAt: iso(r.modified_at),
    ...(r.event_count !== undefined ? { eventCount: r.event_count } : {}),
    ...(r.subtask_count !== undefined ? { subtaskCount: r.subtask_count } : {}),
  };
}

function notFound(message: string) {
  return Object.assign(new Error(message), { statusCode: 404 });
}

/** A missing table (42P01) or schema (3F000) means the job runner never ran against this database. */
function storeMissing(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return code === '42P01' || code === '3F000';
}

export const etlContextRoutes: FastifyPluginAsync<EtlContextRoutesOptions> = async (
  app: FastifyInstance,
  opts,
) => {
  const need = (): EventStore => {
    if (!opts.store) throw notFound('this daemon has no event store (it is not connected to PostgreSQL)');
    return opts.store;
  };
  const guarded = async <T>(fn: (store: EventStore) => Promise<T>): Promise<T> => {
    const store = need();
    try {
      return await fn(store);
    } catch (err) {
      if (storeMissing(err))
        throw notFound(
          `the job runner's event store is not set up in schema ${store.schema}: run \`tag-connector migrate\``,
        );
      throw err;
    }
  };
  const tags = ['etl-contexts'];

  app.get(
    '/v1/api/etl-contexts',
    {
      config: { role: 'admin' },
      schema: {
        summary: 'ETL contexts (tasks), newest first, filtered by status, queue and parent',
        tags,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            status: { type: 'string', enum: [...statusEnum] },
            queue: { type: 'string', minLength: 1, maxLength: 200 },
            parentId: {
              type: 'string',
              pattern: '^([0-9]{1,10}|none)$',
              description: 'only the subtasks of this context; `none`: only top-level contexts',
            },
            limit: { ...limitSchema, description: 'at most this many contexts (1-1000) [100]' },
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['contexts', 'counts', 'queues'],
            properties: {
              contexts: { type: 'array', items: contextSchema },
              counts: {
                type: 'object',
                description: 'contexts by status over the whole store',
                properties: {
                  OPEN: { type: 'integer' },
                  DONE: { type: 'integer' },
                  ERROR: { type: 'integer' },
                },
              },
              queues: {
                type: 'array',
                items: { type: 'string' },
                description: 'the queues of the listed contexts',
              },
            },
          },
          400: errorSchema,
          404: errorSchema,
        },
      },
    },
    async (req) => {
      const q = req.query as { status?: string; queue?: string; parentId?: string; limit?: string };
      return guarded(async (store) => {
        const rows = await store.list({
          ...(q.status ? { status: q.status } : {}),
          ...(q.queue ? { queue: q.queue } : {}),
          ...(q.parentId !== undefined
            ? { parentContextId: q.parentId === 'none' ? null : Number(q.parentId) }
            : {}),
          limit: parseLimit(q.limit, 100, 1000),
        });
        const contexts = rows.map(contextView);
        return {
          contexts,
          counts: await store.countByStatus(),
          queues: [...new Set(contexts.map((c) => c.queue))].sort(),
        };
      });
    },
  );

  app.get(
    '/v1/api/etl-contexts/:id',
    {
      config: { role: 'admin' },
      schema: {
        summary: 'One ETL context with its folded state and its subtasks',
        tags,
        params: idParams,
        response: {
          200: {
            type: 'object',
            required: ['context', 'state', 'subtasks'],
            properties: {
              context: contextSchema,
              state: {
                type: 'object',
                additionalProperties: true,
                description: 'the fold of the events: status, initial, final, lastError, errors',
              },
              subtasks: { type: 'array', items: contextSchema },
            },
          },
          400: errorSchema,
          404: errorSchema,
        },
      },
    },
    async (req) => {
      const id = Number((req.params as { id: string }).id);
      return guarded(async (store) => {
        const row = await store.context(id);
        if (!row) throw notFound(`no ETL context ${id}`);
        const [state, children] = await Promise.all([store.state(id), store.children(id)]);
        return { context: contextView(row), state, subtasks: children.map(contextView) };
      });
    },
  );

  app.get(
    '/v1/api/etl-contexts/:id/events',
    {
      config: { role: 'admin' },
      schema: {
        summary: 'The event timeline of one ETL context, oldest first',
        tags,
        params: idParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            limit: { ...limitSchema, description: 'at most this many events, oldest first (1-10000) [1000]' },
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['contextId', 'events'],
            properties: { contextId: { type: 'integer' }, events: { type: 'array', items: eventSchema } },
          },
          400: errorSchema,
          404: errorSchema,
        },
      },
    },
    async (req) => {
      const id = Number((req.params as { id: string }).id);
      return guarded(async (store) => {
        if (!(await store.context(id))) throw notFound(`no ETL context ${id}`);
        const limit = parseLimit((req.query as { limit?: string }).limit, 1000, 10000);
        const events = await store.events(id, limit);
        return {
          contextId: id,
          events: events.map((e) => ({
            id: e.event_id,
            contextId: e.etl_context_id,
            type: e.type,
            payload: e.payload ?? null,
            meta: e.meta ?? null,
            error: e.error,
            createdAt: iso(e.created_at),
          })),
        };
      });
    },
  );
};
