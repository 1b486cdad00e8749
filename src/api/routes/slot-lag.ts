import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../app.ts';

/**
 * GET /v1/api/slot/lag-history: the slot lag of the last hour, sampled in memory by the slot monitor
 * (every 10 s while this daemon streams; a standby has none). For the console's chart, and for any
 * client that wants a short history without a Prometheus.
 */
export async function slotLagRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  const { extractor, config } = deps;
  app.get(
    '/v1/api/slot/lag-history',
    {
      // Like /info: the daemon's own state, for operators.
      config: { role: 'admin' },
      schema: {
        summary: "The replication slot's lag of the last hour (in-memory samples, oldest first)",
        tags: ['slot'],
        response: {
          200: {
            type: 'object',
            required: ['slot', 'windowSeconds', 'samples'],
            properties: {
              slot: { type: 'string' },
              windowSeconds: { type: 'integer' },
              samples: {
                type: 'array',
                items: {
                  type: 'object',
                  required: ['t', 'lagBytes'],
                  properties: {
                    t: { type: 'integer', description: 'Unix time in milliseconds' },
                    lagBytes: { type: 'integer' },
                  },
                },
              },
            },
          },
        },
      },
    },
    async () => ({
      slot: config.slot,
      windowSeconds: Math.round(extractor.lagHistory.windowMs / 1000),
      samples: extractor.lagHistory.list(),
    }),
  );
}
