import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app.ts';

function describe(err: Error): string {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? `[${code}] ${err.message}` : err.message;
}

export async function healthRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  const { extractor } = deps;
  app.get(
    '/healthz',
    {
      config: { role: 'public' },
      schema: { response: { 200: { type: 'object', properties: { status: { type: 'string' } } } } },
    },
    async () => ({
      status: 'ok',
    }),
  );
  app.get(
    '/readyz',
    {
      config: { role: 'public' },
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
      if (!extractor.pipeline && extractor.standby && (req.query as { standby?: string }).standby === 'ok')
        return reply.send({ status: 'standby', pipeline: 'standby', sinks: [] });
      const state = extractor.pipeline?.state ?? 'starting';
      const sinks = extractor.runners.map((r) => ({ name: r.name, state: r.getStatus().state }));
      const problem = extractor.pipeline?.problem() ?? extractor.startupProblem;
      const ready =
        (state === 'streaming' || state === 'paused') && !problem && sinks.every((s) => s.state === 'ok');
      return reply.status(ready ? 200 : 503).send({
        status: ready ? 'ready' : 'not_ready',
        pipeline: state,
        sinks,
        // What the pipeline is waiting out (e.g. E_PG_AUTH after a password rotation), if anything.
        ...(problem ? { reason: describe(problem) } : {}),
      });
    },
  );
  // Metrics name tables and sinks: admin only, unless the operator opens them (--metrics-public).
  app.get(
    '/metrics',
    { config: { role: deps.config.metricsPublic ? 'public' : 'admin' } },
    async (_req, reply) => {
      const registry = extractor.metrics.registry;
      return reply.type(registry.contentType).send(await registry.metrics());
    },
  );
}
