import type { FastifyInstance, FastifyReply } from 'fastify';
import { BACKFILL_STATES, MAX_CHUNK_SIZE, type BackfillService } from '../../extractor/backfill/index.ts';
import type { AppDeps } from '../app.ts';

const tableState = {
  type: 'object',
  properties: {
    table: { type: 'string' },
    state: { type: 'string', enum: ['queued', 'running', 'done'] },
    rows: { type: 'number' },
    chunks: { type: 'number' },
    lastKey: { type: ['array', 'null'], items: { type: 'string' } },
    estimatedRows: { type: ['number', 'null'] },
    startedAt: { type: ['string', 'null'] },
    finishedAt: { type: ['string', 'null'] },
    rate: { type: ['number', 'null'] },
  },
} as const;

const backfillState = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    state: { type: 'string', enum: BACKFILL_STATES },
    tables: { type: 'array', items: tableState },
    where: { type: ['string', 'null'] },
    chunkSize: { type: 'number' },
    origin: { type: 'string' },
    createdAt: { type: 'string' },
    startedAt: { type: ['string', 'null'] },
    finishedAt: { type: ['string', 'null'] },
    error: { type: ['string', 'null'] },
    rows: { type: 'number' },
    rate: { type: ['number', 'null'] },
  },
} as const;

const errorBody = {
  type: 'object',
  properties: { error: { type: 'string' }, message: { type: 'string' } },
} as const;

const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', minLength: 1, maxLength: 64 } },
} as const;

/**
 * Backfills into the sinks (docs/backfill.md): POST queues one, GET lists or shows them, DELETE
 * cancels. The work is the extractor's backfill runner; these routes read and write its state.
 */
export async function backfillRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  const { extractor } = deps;
  const service = (reply: FastifyReply): BackfillService | undefined => {
    if (extractor.backfills) return extractor.backfills;
    void reply.status(503).send({ error: 'unavailable', message: 'the daemon is still starting' });
    return undefined;
  };

  app.post(
    '/v1/api/backfills',
    {
      // Backfills read whole tables into every sink and take a SQL predicate: admins only.
      config: { role: 'admin' },
      schema: {
        summary: 'Backfill tables into the sinks (read events beside the live stream)',
        body: {
          type: 'object',
          required: ['tables'],
          additionalProperties: false,
          properties: {
            tables: {
              type: 'array',
              minItems: 1,
              maxItems: 1000,
              // schema.table, as the backfill service reads it (a bare name is refused).
              items: { type: 'string', minLength: 3, maxLength: 200, pattern: '^[^.]+\\.[^.]+$' },
            },
            where: { type: ['string', 'null'], maxLength: 10_000 },
            chunkSize: { type: 'integer', minimum: 1, maximum: MAX_CHUNK_SIZE },
          },
        },
        response: { 202: backfillState, 400: errorBody, 503: errorBody },
      },
    },
    async (req, reply) => {
      const s = service(reply);
      if (!s) return reply;
      const body = req.body as { tables: string[]; where?: string | null; chunkSize?: number };
      const b = await s.create(body, 'api');
      extractor.backfillRunner?.poke();
      return reply.status(202).send(b);
    },
  );

  app.get(
    '/v1/api/backfills',
    {
      config: { role: 'admin' },
      schema: {
        summary: 'Backfills of this slot, newest first',
        response: { 200: { type: 'array', items: backfillState }, 503: errorBody },
      },
    },
    async (_req, reply) => {
      const s = service(reply);
      if (!s) return reply;
      return s.list();
    },
  );

  app.get(
    '/v1/api/backfills/:id',
    {
      config: { role: 'admin' },
      schema: {
        summary: "A backfill's state and progress",
        params: idParams,
        response: { 200: backfillState, 404: errorBody, 503: errorBody },
      },
    },
    async (req, reply) => {
      const s = service(reply);
      if (!s) return reply;
      const { id } = req.params as { id: string };
      const b = await s.get(id);
      if (!b) return reply.status(404).send({ error: 'not_found', message: `no backfill ${id}` });
      return b;
    },
  );

  app.delete(
    '/v1/api/backfills/:id',
    {
      config: { role: 'admin' },
      schema: {
        summary: 'Cancel a queued or running backfill',
        params: idParams,
        response: { 200: backfillState, 404: errorBody, 409: errorBody, 503: errorBody },
      },
    },
    async (req, reply) => {
      const s = service(reply);
      if (!s) return reply;
      const { id } = req.params as { id: string };
      const before = await s.get(id);
      if (!before) return reply.status(404).send({ error: 'not_found', message: `no backfill ${id}` });
      const b = await s.cancel(id);
      if (b.state !== 'canceled')
        return reply.status(409).send({ error: 'conflict', message: `backfill ${id} is already ${b.state}` });
      return b;
    },
  );
}
