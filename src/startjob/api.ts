import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { JOB_KINDS, JOB_STATUSES, type JobKind } from './chronology.ts';
import type { JobManager } from './jobs.ts';
import type { JobRunDoc } from './store.ts';

/**
 * The job API of start-job (the lblod initiator's paths): `POST` schedules a run (201, or 409 when
 * the chronology refuses it), `DELETE` cancels the scheduled/busy runs of that kind (200, or 404 when
 * there is none), `GET /jobs` lists runs with status, timings, counts and errors. Errors are
 * `{error, message}`. Auth: each route declares its role (src/api/auth.ts); the app that registers this
 * plugin runs the shared auth hook, error handler and 405 handler (buildStartJob).
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
  /** Readiness: resolves when the snapshot store answers. */
  ready?: () => Promise<void>;
}

/** The answers every route may give besides its own (auth, limits, 5xx). */
const commonErrors = { 401: errorSchema, 403: errorSchema, 429: errorSchema } as const;

export const jobApi: FastifyPluginAsync<JobApiOptions> = async (app: FastifyInstance, opts) => {
  const { jobs } = opts;

  for (const kind of JOB_KINDS) {
    const path = JOB_PATHS[kind];
    app.post(
      path,
      {
        config: { role: 'admin' },
        schema: {
          summary: `Schedule a ${kind} run`,
          tags: ['jobs'],
          response: {
            201: { type: 'object', properties: { run: runSchema } },
            ...commonErrors,
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
        config: { role: 'admin' },
        schema: {
          summary: `Cancel the scheduled or busy ${kind} runs`,
          tags: ['jobs'],
          response: {
            200: { type: 'object', properties: { canceled: { type: 'array', items: runSchema } } },
            ...commonErrors,
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
      config: { role: 'public' },
      schema: { hide: true, response: { 200: { type: 'object', properties: { ok: { type: 'boolean' } } } } },
    },
    async () => ({ ok: true }),
  );
  app.get(
    '/readyz',
    {
      config: { role: 'public' },
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
      // Reading runs is open to any credential; starting and canceling them needs admin.
      config: { role: 'authenticated' },
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
          ...commonErrors,
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
