import type { Extractor } from '../extractor/index.ts';
import type { Logger } from '../log.ts';
import { buildApp } from './app.ts';
import { Authenticator } from './auth.ts';
import type { ApiConfig } from './config.ts';

export interface ApiHandle {
  url: string;
  close(): Promise<void>;
}

/**
 * Starts the daemon's HTTP API on --serverHost/--serverPort. The auth is built first: a source that
 * yields no credential, or a non-loopback address without auth, is a config error (exit 2) before
 * anything listens.
 */
export async function startApi(deps: {
  config: ApiConfig;
  logger: Logger;
  extractor: Extractor;
}): Promise<ApiHandle> {
  const { config } = deps;
  const auth = Authenticator.fromOptions(config.auth);
  auth.warm((err) => deps.logger.warn({ err: err.message }, 'OpenID discovery failed; retried on use'));
  const app = await buildApp({ ...deps, auth });
  await app.listen({ host: config.serverHost, port: config.serverPort });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.serverPort;
  const url = `http://${config.serverHost.includes(':') ? `[${config.serverHost}]` : config.serverHost}:${port}`;
  deps.logger.info({ url, auth: auth.enabled }, 'HTTP API listening');
  return {
    url,
    // Bounded: a shutdown never hangs on a client.
    close: () => Promise.race([app.close(), new Promise<void>((r) => setTimeout(r, 2000).unref())]),
  };
}
