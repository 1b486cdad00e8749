import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { JOB_KINDS, JOB_STATUSES, type JobKind } from './chronology.ts';
import type { JobManager } from './jobs.ts';
import type { JobRunDoc } from './store.ts';

/**
 * The job API of start-job (the lblod initiator's paths): `POST` schedules a run (201, or 409 when
 * the chronology refuses it), `DELETE` cancels the scheduled/busy runs of that kind (200, or 404 when
 * there is none), `GET /jobs` lists runs with status, timings, counts and errors. Errors are
 * `{error, message}`. Auth: pass the shared API auth hook as `auth` (src/api) to guard every route.
 */

export const JOB_PATHS: Record<JobKind, string> = {
  'initial-sync': '/initial-sync-jobs',
  healing: '/healing-jobs',
  dump: '/dump-publication-graph-jobs',
};

const errorSchema = {
  type: 'object',
  required: ['error', 'message'],
  properties: { error: { type: 'string' }, message: { type: 'string' } },
} as const;

const nullableDate = { type: ['string', 'null'], format: 'date-time' } as const;

const countsSchema = {
  type: ['object', 'null'],
  properties: {
    items: { type: 'integer' },
    created: { type: 'integer' },
    changed: { type: 'integer' },
    deleted: { type: 'integer' },
    unchanged: { type: 'integer' },
    emitted: { type: 'integer' },
  },
} as const;

const runSchema = {
  type: 'object',
  required: ['id', 'kind', 'status', 'trigger', 'scheduledAt'],
  properties: {
    id: { type: 'string' },
    kind: { type: 'string', enum: [...JOB_KINDS] },
    status: { type: 'string', enum: [...JOB_STATUSES] },
    trigger: { type: 'string' },
    full: { type: 'boolean' },
    scheduledAt: { type: 'string', format: 'date-time' },
    startedAt: nullableDate,
    finishedAt: nullableDate,
    durationMs: { type: ['integer', 'null'] },
    counts: countsSchema,
    error: { type: ['string', 'null'] },
    result: { type: ['object', 'null'], additionalProperties: true },
    etlContextId: { type: ['string', 'integer', 'null'] },
  },
} as const;

const kindStateSchema = {
  type: 'object',
  properties: {
    active: { type: 'boolean' },
    next: nullableDate,
    lastRefusal: {
      type: ['object', 'null'],
      properties: { at: { type: 'string', format: 'date-time' }, reason: { type: 'string' } },
    },
  },
} as const;

export function runView(r: JobRunDoc) {
  const iso = (d?: Date | null) => (d ? new Date(d).toISOString() : null);
  return {
    id: r._id,
    kind: r.kind,
    status: r.status,
    trigger: r.trigger,
    full: r.full,
    scheduledAt: iso(r.scheduledAt),
    startedAt: iso(r.startedAt),
    finishedAt: iso(r.finishedAt),
    durationMs:
      r.startedAt && r.finishedAt ? new Date(r.finishedAt).getTime() - new Date(r.startedAt).getTime() : null,
    counts: r.counts ?? null,
    error: r.error ?? null,
    result: r.result ?? null,
    etlContextId: r.etlContextId ?? null,
  };
}

export interface JobApiOptions {
  jobs: JobManager;
  /** The shared API auth (src/api/auth.ts `authHook`), run on every request but /healthz and /readyz. */
  auth?: (req: FastifyRequest, reply: FastifyReply) => Promise<void>;
  /** Readiness: resolves when the snapshot store answers. */
  ready?: () => Promise<void>;
}

const STATUS_ERRORS: Record<number, string> = {
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  503: 'unavailable',
};

export const jobApi: FastifyPluginAsync<JobApiOptions> = async (app: FastifyInstance, opts) => {
  const { jobs } = opts;
  if (opts.auth) app.addHook('onRequest', opts.auth);

  app.setErrorHandler(
    (err: Error & { statusCode?: number; validation?: unknown; code?: string }, _req, reply) => {
      const status = err.statusCode && err.statusCode >= 400 ? err.statusCode : 500;
      const error = STATUS_ERRORS[status] ?? (status >= 500 ? 'internal_error' : 'bad_request');
      const internal = status >= 500 && status !== 503;
      if (internal) app.log.error({ err }, 'job API error');
      return reply.code(status).send({ error, message: internal ? 'internal error' : err.message });
    },
  );
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({ error: 'not_found', message: `no route ${req.method} ${req.url}` }),
  );

  for (const kind of JOB_KINDS) {
    const path = JOB_PATHS[kind];
    app.post(
      path,
      {
        schema: {
          summary: `Schedule a ${kind} run`,
          tags: ['jobs'],
          response: {
            201: { type: 'object', properties: { run: runSchema } },
            409: errorSchema,
            503: errorSchema,
          },
        },
      },
      async (_req, reply) => {
        const r = await jobs.request(kind, 'api');
        if (!r.ok) return reply.code(409).send({ error: r.code, message: r.reason });
        return reply.code(201).send({ run: runView(r.run) });
      },
    );
    app.delete(
      path,
      {
        schema: {
          summary: `Cancel the scheduled or busy ${kind} runs`,
          tags: ['jobs'],
          response: {
            200: { type: 'object', properties: { canceled: { type: 'array', items: runSchema } } },
            404: errorSchema,
          },
        },
      },
      async (_req, reply) => {
        const canceled = await jobs.cancel(kind);
        if (canceled.length === 0)
          return reply.code(404).send({ error: 'not_found', message: `no scheduled or busy ${kind} run` });
        return { canceled: canceled.map(runView) };
      },
    );
  }

  app.get(
    '/healthz',
    {
      schema: { hide: true, response: { 200: { type: 'object', properties: { ok: { type: 'boolean' } } } } },
    },
    async () => ({ ok: true }),
  );
  app.get(
    '/readyz',
    {
      schema: {
        hide: true,
        response: { 200: { type: 'object', properties: { ok: { type: 'boolean' } } }, 503: errorSchema },
      },
    },
    async (_req, reply) => {
      try {
        await opts.ready?.();
        return { ok: true };
      } catch (err) {
        return reply
          .code(503)
          .send({ error: 'unavailable', message: `snapshot store: ${(err as Error).message}` });
      }
    },
  );

  app.get(
    '/jobs',
    {
      schema: {
        summary: 'Job runs: status, timings, counts, errors; per kind the next cron time',
        tags: ['jobs'],
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            limit: { type: 'integer', minimum: 1, maximum: 1000, default: 50 },
            kind: { type: 'string', enum: [...JOB_KINDS] },
            status: { type: 'string', enum: [...JOB_STATUSES] },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              initialSyncSucceeded: { type: 'boolean' },
              kinds: {
                type: 'object',
                properties: {
                  'initial-sync': kindStateSchema,
                  healing: kindStateSchema,
                  dump: kindStateSchema,
                },
              },
              runs: { type: 'array', items: runSchema },
            },
          },
          400: errorSchema,
        },
      },
    },
    async (req) => {
      const q = req.query as { limit: number; kind?: JobKind; status?: string };
      const o = await jobs.overview(q.kind || q.status ? 1000 : q.limit);
      const runs = o.runs.filter(
        (r) => (!q.kind || r.kind === q.kind) && (!q.status || r.status === q.status),
      );
      const iso = (d: Date | null) => (d ? d.toISOString() : null);
      const kinds = Object.fromEntries(
        Object.entries(o.kinds).map(([k, v]) => [
          k,
          {
            active: v.active,
            next: iso(v.next),
            lastRefusal: v.lastRefusal && {
              at: v.lastRefusal.at.toISOString(),
              reason: v.lastRefusal.reason,
            },
          },
        ]),
      );
      return {
        initialSyncSucceeded: o.initialSyncSucceeded,
        kinds,
        runs: runs.slice(0, q.limit).map(runView),
      };
    },
  );
};
