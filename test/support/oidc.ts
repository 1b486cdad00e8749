import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair } from 'jose';
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

/**
 * A private JWKS for the provider, written where the tests can read it too: the API auth tests sign
 * expired tokens and ID tokens with the issuer's own key (test/support/oidc-tokens.ts).
 */
export async function writeSigningKeys(dir: string): Promise<string> {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = {
    ...(await exportJWK(privateKey)),
    kid: `tagc-${Date.now().toString(36)}`,
    alg: 'RS256',
    use: 'sig',
  };
  const file = join(dir, 'jwks.json');
  writeFileSync(file, JSON.stringify({ keys: [jwk] }), { mode: 0o600 });
  return file;
}

/** Starts the provider script (startjob/oidc-server.ts) on a free port; `issuer` may end in a slash. */
export async function startProvider(
  ownerPid: number,
  jwksFile: string | undefined,
  issuerOf: (port: number) => string = (port) => `http://127.0.0.1:${port}`,
): Promise<{ issuer: string; pid: number; logDir: string }> {
  const port = await freePort();
  const issuer = issuerOf(port);
  const script = new URL('./startjob/oidc-server.ts', import.meta.url).pathname;
  const { pid, logDir } = await spawnServer(
    'OpenID provider',
    process.execPath,
    ['--no-warnings', script, String(port), issuer],
    ownerPid,
    () => httpOk(`${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`),
    jwksFile ? { ...process.env, OIDC_JWKS_FILE: jwksFile } : process.env,
  );
  return { issuer, pid, logDir };
}

/** A real OpenID provider (oidc-provider) with client-credentials clients; see startjob/oidc-server.ts. */
export const service: ServiceDef = {
  name: 'oidc',
  available: () => true,
  async start(ownerPid) {
    const keyDir = mkdtempSync(join(tmpdir(), 'tagc-oidc-keys-'));
    const jwksFile = await writeSigningKeys(keyDir);
    const { issuer, pid, logDir } = await startProvider(ownerPid, jwksFile);
    return {
      name: 'oidc',
      env: {
        OIDC_ISSUER: issuer,
        OIDC_CLIENT_ID: TEST_CLIENT_ID,
        OIDC_CLIENT_SECRET: TEST_CLIENT_SECRET,
        OIDC_SHORT_CLIENT_ID: SHORT_CLIENT_ID,
        OIDC_WS_CLIENT_ID: WS_CLIENT_ID,
        OIDC_WS_CLIENT_SECRET: WS_CLIENT_SECRET,
        OIDC_JWKS_FILE: jwksFile,
      },
      pids: [pid],
      dirs: [logDir, keyDir],
    };
  },
};
