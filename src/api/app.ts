import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Config } from '../config/index.ts';
import type { Extractor } from '../extractor/extractor.ts';
import type { Logger } from '../log.ts';
import websocket from '@fastify/websocket';
import swagger from '@fastify/swagger';
import { Authenticator, authHook } from './auth.ts';
import { healthRoutes } from './routes/health.ts';
import { infoRoutes } from './routes/info.ts';
import { snapshotRoutes } from './routes/snapshot.ts';
import { slotLagRoutes } from './routes/slot-lag.ts';
import { etlContextRoutes } from './routes/etl-contexts.ts';
import { consoleRoutes } from './console.ts';
import { EventStore } from '../jobrunner/store.ts';
import { streamRoutes } from './routes/stream.ts';
import { VERSION } from '../version.ts';

export interface AppDeps {
  config: Config;
  logger: Logger;
  extractor: Extractor;
}

/** The fastify app (a plugin tree; server.ts-style shell in index.ts). Tests use app.inject(). */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    // Request logs only at warn and above: a busy Stream/metrics scraper would drown the daemon's own.
    loggerInstance: deps.logger.child({ part: 'api' }, { level: 'warn' }) as FastifyBaseLogger,
    // Stream clients hold their responses open forever: close() must cut them, not wait for them.
    forceCloseConnections: true,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false } },
  });
  app.setErrorHandler((err: Error & { statusCode?: number; validation?: unknown }, _req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 ? err.statusCode : 500;
    if (status >= 500 && status !== 503) deps.logger.error({ err: err.message }, 'request failed');
    const code = (err as { code?: string }).code;
    const error =
      status === 401
        ? 'unauthorized'
        : status === 403
          ? 'forbidden'
          : status === 404
            ? 'not_found'
            : status === 410
              ? (code ?? 'gone')
              : status === 503
                ? 'unavailable'
                : status >= 500
                  ? 'internal_error'
                  : 'bad_request';
    void reply.status(status).send({ error, message: err.message });
  });
  app.setNotFoundHandler((req, reply) => {
    void reply
      .status(404)
      .send({ error: 'not_found', message: `no route ${req.method} ${req.url.split('?')[0]}` });
  });
  await app.register(swagger, {
    openapi: {
      info: {
        title: 'tag-connector',
        version: VERSION,
        description:
          'Change-data-capture daemon: info, health, Stream and Snapshot, slot lag history, ETL contexts; the console at /console',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
  });
  await app.register(websocket, { options: { maxPayload: 64 * 1024 } });
  app.addHook('onRequest', authHook(new Authenticator(deps.config)));
  await app.register(healthRoutes, deps);
  await app.register(infoRoutes, deps);
  await app.register(streamRoutes, deps);
  await app.register(snapshotRoutes, deps);
  await app.register(slotLagRoutes, deps);
  await app.register(etlContextRoutes, {
    store: new EventStore(deps.extractor.pool, deps.config.stateSchema),
  });
  await app.register(consoleRoutes, { daemon: 'extract-tasks' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  return app;
}
