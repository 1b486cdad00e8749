/**
 * A real OpenID provider (oidc-provider) for the start-job and API auth tests, on 127.0.0.1. Clients:
 *   tagc-test   client-credentials, tokens live OIDC_TTL seconds (default 600)
 *   tagc-short  client-credentials, tokens live OIDC_SHORT_TTL seconds (default 3): refresh tests
 *   tagc-ws     the workspace API (resource server): may introspect tokens
 *   tagc-w1     client-credentials; its JWT access tokens carry `workspaces: [w1]` (scoped API tokens)
 * Resource indicators (RFC 8707) make JWT access tokens (RFC 9068) for the API auth tests:
 *   resource=urn:tag-connector  → aud tag-connector, scopes stream snapshot admin
 *   resource=urn:some-other-app → aud some-other-app
 * Without `resource`, tokens stay opaque (the workspace client's tests introspect them).
 * Signing keys: the private JWKS in OIDC_JWKS_FILE when set (the tests sign expired tokens and ID
 * tokens with the issuer's own key), else oidc-provider's development key.
 * Usage: node oidc-server.ts PORT [ISSUER]   (prints "ready" when listening)
 */
import { readFileSync } from 'node:fs';
import Provider from 'oidc-provider';

export const TEST_CLIENT_ID = 'tagc-test';
export const TEST_CLIENT_SECRET = 'tagc-test-secret-0123456789abcdef';
export const SHORT_CLIENT_ID = 'tagc-short';
export const WS_CLIENT_ID = 'tagc-ws';
export const WS_CLIENT_SECRET = 'tagc-ws-secret-0123456789abcdef';
export const W1_CLIENT_ID = 'tagc-w1';

/** Resource indicator → audience of the JWT access tokens issued for it. */
export const API_RESOURCES: Record<string, string> = {
  'urn:tag-connector': 'tag-connector',
  'urn:some-other-app': 'some-other-app',
};

export function createProvider(issuer: string, ttl = 600, shortTtl = 3, jwksFile?: string): Provider {
  const cc = { grant_types: ['client_credentials'], redirect_uris: [], response_types: [] };
  return new Provider(issuer, {
    clients: [
      { client_id: TEST_CLIENT_ID, client_secret: TEST_CLIENT_SECRET, ...cc },
      { client_id: SHORT_CLIENT_ID, client_secret: TEST_CLIENT_SECRET, ...cc },
      { client_id: WS_CLIENT_ID, client_secret: WS_CLIENT_SECRET, ...cc },
      { client_id: W1_CLIENT_ID, client_secret: TEST_CLIENT_SECRET, ...cc },
    ],
    ...(jwksFile ? { jwks: JSON.parse(readFileSync(jwksFile, 'utf8')) } : {}),
    features: {
      clientCredentials: { enabled: true },
      introspection: { enabled: true, allowedPolicy: async () => true },
      devInteractions: { enabled: false },
      resourceIndicators: {
        enabled: true,
        getResourceServerInfo: async (_ctx: unknown, resource: string) => {
          const audience = API_RESOURCES[resource];
          if (!audience) throw new Error(`unknown resource ${resource}`);
          return {
            audience,
            scope: 'stream snapshot admin',
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    extraTokenClaims: async (_ctx: unknown, token: { clientId?: string }) =>
      token.clientId === W1_CLIENT_ID ? { workspaces: ['w1'] } : undefined,
    ttl: {
      ClientCredentials: (_ctx: unknown, _token: unknown, client: { clientId: string }) =>
        client.clientId === SHORT_CLIENT_ID ? shortTtl : ttl,
    },
  } as never);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const port = Number(process.argv[2]);
  const issuer = process.argv[3] ?? `http://127.0.0.1:${port}`;
  const provider = createProvider(
    issuer,
    Number(process.env.OIDC_TTL ?? 600),
    Number(process.env.OIDC_SHORT_TTL ?? 3),
    process.env.OIDC_JWKS_FILE,
  );
  // oidc-provider warns about its development-only defaults (keys, cookies): fine for tests.
  provider.listen(port, '127.0.0.1', () => process.stdout.write('ready\n'));
}
