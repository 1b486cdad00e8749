/**
 * A real OpenID provider (oidc-provider) for the start-job tests, on 127.0.0.1. Clients:
 *   tagc-test   client-credentials, tokens live OIDC_TTL seconds (default 600)
 *   tagc-short  client-credentials, tokens live OIDC_SHORT_TTL seconds (default 3): refresh tests
 *   tagc-ws     the workspace API (resource server): may introspect tokens
 * Usage: node oidc-server.ts PORT   (prints "ready" when listening)
 */
import Provider from 'oidc-provider';

export const TEST_CLIENT_ID = 'tagc-test';
export const TEST_CLIENT_SECRET = 'tagc-test-secret-0123456789abcdef';
export const SHORT_CLIENT_ID = 'tagc-short';
export const WS_CLIENT_ID = 'tagc-ws';
export const WS_CLIENT_SECRET = 'tagc-ws-secret-0123456789abcdef';

export function createProvider(issuer: string, ttl = 600, shortTtl = 3): Provider {
  const cc = { grant_types: ['client_credentials'], redirect_uris: [], response_types: [] };
  return new Provider(issuer, {
    clients: [
      { client_id: TEST_CLIENT_ID, client_secret: TEST_CLIENT_SECRET, ...cc },
      { client_id: SHORT_CLIENT_ID, client_secret: TEST_CLIENT_SECRET, ...cc },
      { client_id: WS_CLIENT_ID, client_secret: WS_CLIENT_SECRET, ...cc },
    ],
    features: {
      clientCredentials: { enabled: true },
      introspection: { enabled: true, allowedPolicy: async () => true },
      devInteractions: { enabled: false },
    },
    ttl: {
      ClientCredentials: (_ctx: unknown, _token: unknown, client: { clientId: string }) =>
        client.clientId === SHORT_CLIENT_ID ? shortTtl : ttl,
    },
  } as never);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const port = Number(process.argv[2]);
  const issuer = `http://127.0.0.1:${port}`;
  const provider = createProvider(
    issuer,
    Number(process.env.OIDC_TTL ?? 600),
    Number(process.env.OIDC_SHORT_TTL ?? 3),
  );
  // oidc-provider warns about its development-only defaults (keys, cookies): fine for tests.
  provider.listen(port, '127.0.0.1', () => process.stdout.write('ready\n'));
}
