import type { Config } from '../config/index.ts';
import type { Extractor } from '../extractor/extractor.ts';
import type { Logger } from '../log.ts';
import { buildApp } from './app.ts';

export interface ApiHandle {
  url: string;
  close(): Promise<void>;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

/** Starts the daemon's HTTP API on --serverHost/--serverPort. */
export async function startApi(deps: {
  config: Config;
  logger: Logger;
  extractor: Extractor;
}): Promise<ApiHandle> {
  const { config } = deps;
  const hasAuth = Boolean(config.authTokensFile || config.oidc);
  if (!LOOPBACK.test(config.serverHost) && !hasAuth && !config.insecureListen) {
    const { ConnectorError, EXIT } = await import('../errors.ts');
    throw new ConnectorError(
      'E_INSECURE_LISTEN',
      `refusing to serve ${config.serverHost} without auth: configure --auth-tokens-file or --oidc, ` +
        `or pass --insecure-listen to serve a non-loopback address unauthenticated`,
      EXIT.config,
    );
  }
  const app = await buildApp(deps);
  await app.listen({ host: config.serverHost, port: config.serverPort });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.serverPort;
  const url = `http://${config.serverHost.includes(':') ? `[${config.serverHost}]` : config.serverHost}:${port}`;
  deps.logger.info({ url }, 'HTTP API listening');
  return {
    url,
    // Bounded: a shutdown never hangs on a client.
    close: () => Promise.race([app.close(), new Promise<void>((r) => setTimeout(r, 2000).unref())]),
  };
}
