import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app.ts';

export async function healthRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  const { extractor } = deps;
  app.get(
    '/healthz',
    { schema: { response: { 200: { type: 'object', properties: { status: { type: 'string' } } } } } },
    async () => ({
      status: 'ok',
    }),
  );
  app.get(
    '/readyz',
    {
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            standby: {
              type: 'string',
              enum: ['ok'],
              description:
                'standby=ok: a standby waiting for the leader lock counts as ready (for Kubernetes rollouts of leader + standby, docs/deploy.md)',
            },
          },
        },
      },
    },
    async (req, reply) => {
      const state = extractor.pipeline?.state ?? 'starting';
      if (!extractor.pipeline && extractor.standby && (req.query as { standby?: string }).standby === 'ok')
        return reply.send({ status: 'standby', pipeline: 'standby', sinks: [] });
      const sinks = extractor.runners.map((r) => ({ name: r.name, state: r.getStatus().state }));
      const ready = (state === 'streaming' || state === 'paused') && sinks.every((s) => s.state === 'ok');
      return reply
        .status(ready ? 200 : 503)
        .send({ status: ready ? 'ready' : 'not_ready', pipeline: state, sinks });
    },
  );
  app.get('/metrics', async (_req, reply) => {
    const registry = extractor.metrics.registry;
    return reply.type(registry.contentType).send(await registry.metrics());
  });
}
