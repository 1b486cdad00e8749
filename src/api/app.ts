import Fastify, { type FastifyInstance } from 'fastify';
import type { Extractor } from '../extractor/index.ts';
import type { Logger } from '../log.ts';
import websocket from '@fastify/websocket';
import swagger from '@fastify/swagger';
import { Authenticator, useAuth } from './auth.ts';
import type { ApiConfig } from './config.ts';
import { errorHandler, methodNotAllowed } from './http-errors.ts';
import { openapiOptions } from './openapi.ts';
import { apiServerOptions } from './server-options.ts';
import { backfillRoutes } from './routes/backfills.ts';
import { healthRoutes } from './routes/health.ts';
import { infoRoutes } from './routes/info.ts';
import { snapshotRoutes } from './routes/snapshot.ts';
import { slotLagRoutes } from './routes/slot-lag.ts';
import { etlContextRoutes } from './routes/etl-contexts.ts';
import { consoleRoutes } from './console.ts';
import { EventStore } from '../jobrunner/store.ts';
import { streamRoutes } from './routes/stream.ts';
import { schemaRoutes } from './routes/schemas.ts';
import { VERSION } from '../version.ts';

export interface AppDeps {
  /** The API's slice of the config (src/app/api-config.ts builds it). */
  config: ApiConfig;
  logger: Logger;
  extractor: Extractor;
  /** Built from the config when absent (startApi builds it first, to fail closed before listening). */
  auth?: Authenticator;
}

/** The fastify app (a plugin tree; server.ts-style shell in index.ts). Tests use app.inject(). */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const auth = deps.auth ?? Authenticator.fromOptions(deps.config.auth);
  const app = Fastify({
    ...apiServerOptions(deps.logger),
    // Stream clients hold their responses open forever: close() must cut them, not wait for them.
    forceCloseConnections: true,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false } },
  });
  app.setErrorHandler(errorHandler(deps.logger));
  methodNotAllowed(app);
  await app.register(
    swagger,
    openapiOptions(
      app,
      {
        title: 'tag-connector',
        version: VERSION,
        description:
          'Change-data-capture daemon: info, health, Stream and Snapshot, slot lag history, ETL contexts; the console at /console',
      },
      auth.enabled,
    ),
  );
  await app.register(websocket, { options: { maxPayload: 64 * 1024 } });
  useAuth(app, auth);
  await app.register(healthRoutes, { ...deps, auth });
  await app.register(infoRoutes, deps);
  await app.register(streamRoutes, deps);
  await app.register(snapshotRoutes, deps);
  await app.register(backfillRoutes, deps);
  await app.register(schemaRoutes, deps);
  await app.register(slotLagRoutes, deps);
  await app.register(etlContextRoutes, {
    store: new EventStore(deps.extractor.pool, deps.config.stateSchema),
  });
  await app.register(consoleRoutes, { daemon: 'extract-tasks' });
  app.get('/openapi.json', { schema: { hide: true }, config: { role: 'authenticated' } }, async () =>
    app.swagger(),
  );
  return app;
}
