import type { ServiceDef } from './services.ts';
import { freePort } from './ports.ts';
import { httpOk, spawnServer } from './startjob/spawn.ts';
import {
  TEST_CLIENT_ID,
  TEST_CLIENT_SECRET,
  SHORT_CLIENT_ID,
  WS_CLIENT_ID,
  WS_CLIENT_SECRET,
} from './startjob/oidc-server.ts';

/** A real OpenID provider (oidc-provider) with client-credentials clients; see startjob/oidc-server.ts. */
export const service: ServiceDef = {
  name: 'oidc',
  available: () => true,
  async start(ownerPid) {
    const port = await freePort();
    const issuer = `http://127.0.0.1:${port}`;
    const script = new URL('./startjob/oidc-server.ts', import.meta.url).pathname;
    const { pid, logDir } = await spawnServer(
      'OpenID provider',
      process.execPath,
      ['--no-warnings', script, String(port)],
      ownerPid,
      () => httpOk(`${issuer}/.well-known/openid-configuration`),
    );
    return {
      name: 'oidc',
      env: {
        OIDC_ISSUER: issuer,
        OIDC_CLIENT_ID: TEST_CLIENT_ID,
        OIDC_CLIENT_SECRET: TEST_CLIENT_SECRET,
        OIDC_SHORT_CLIENT_ID: SHORT_CLIENT_ID,
        OIDC_WS_CLIENT_ID: WS_CLIENT_ID,
        OIDC_WS_CLIENT_SECRET: WS_CLIENT_SECRET,
      },
      pids: [pid],
      dirs: [logDir],
    };
  },
};
