import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app.ts';

function describe(err: Error): string {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? `[${code}] ${err.message}` : err.message;
}

/**
 * What /readyz says of a problem. It is a public route, and a PostgreSQL error names users, hosts or
 * tables: with auth on, only an admin credential gets the message, anyone else its code alone
 * (docs/security.md: the open port shows readiness, not data).
 */
export function readinessReason(err: Error, full: boolean): string {
  if (full) return describe(err);
  const code = (err as { code?: unknown }).code;
  return `${typeof code === 'string' ? `[${code}] ` : ''}not ready (the log, or /readyz with an admin token, says why)`;
}

async function isAdmin(auth: AppDeps['auth'], header: string | undefined): Promise<boolean> {
  if (!auth?.enabled) return true;
  try {
    return (await auth.authenticate(header)).roles.has('admin');
  } catch {
    return false;
  }
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
        ...(problem
          ? { reason: readinessReason(problem, await isAdmin(deps.auth, req.headers.authorization)) }
          : {}),
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
