import { describe, expect, it } from '@jest/globals';
import { OidcTokenSource } from '../../../src/startjob/token.ts';
import { WorkspaceReader, DEFAULT_CURSOR_QUERY } from '../../../src/startjob/workspace.ts';
import { CLIENT_ID, CLIENT_SECRET, env, TestWorkspace } from './helpers.ts';

const reader = (ws: TestWorkspace, token: OidcTokenSource) =>
  new WorkspaceReader({
    url: ws.url,
    query: DEFAULT_CURSOR_QUERY,
    paging: 'cursor',
    itemsPath: 'items',
    idField: 'id',
    pageSize: 100,
    timeoutMs: 5000,
    retries: 1,
    retryBaseMs: 10,
    token,
  });

async function readAll(r: WorkspaceReader): Promise<number> {
  let n = 0;
  for await (const p of r.pages()) n += p.items.length;
  return n;
}

describe('OIDC client-credentials token (real oidc-provider)', () => {
  it('fetches a token by discovery from the issuer and caches it', async () => {
    const source = new OidcTokenSource({
      oidc: env('OIDC_ISSUER'),
      clientId: CLIENT_ID(),
      clientSecret: CLIENT_SECRET(),
    });
    const a = await source.get();
    const [b, c] = await Promise.all([source.get(), source.get()]);
    expect(a).toMatch(/^\S{20,}$/);
    expect(b).toBe(a);
    expect(c).toBe(a);
    expect(source.fetches).toBe(1);
    expect(source.expiresAt! - Date.now()).toBeGreaterThan(500_000); // 600 s tokens
  });

  it('accepts the token endpoint itself instead of the issuer', async () => {
    const source = new OidcTokenSource({
      oidc: `${env('OIDC_ISSUER')}/token`,
      clientId: CLIENT_ID(),
      clientSecret: CLIENT_SECRET(),
    });
    expect(await source.get()).toMatch(/^\S{20,}$/);
  });

  it('refreshes shortly before expiry (3 s tokens)', async () => {
    const source = new OidcTokenSource({
      oidc: env('OIDC_ISSUER'),
      clientId: process.env.OIDC_SHORT_CLIENT_ID ?? 'tagc-short',
      clientSecret: CLIENT_SECRET(),
    });
    const first = await source.get();
    expect(await source.get()).toBe(first);
    // refreshAt = expiry - min(30 s, 10% of 3 s) = 2.7 s after the fetch
    await new Promise((r) => setTimeout(r, 2900));
    const second = await source.get();
    expect(second).not.toBe(first);
    expect(source.fetches).toBe(2);
  });

  it('names the problem when the secret is wrong', async () => {
    const source = new OidcTokenSource({
      oidc: env('OIDC_ISSUER'),
      clientId: CLIENT_ID(),
      clientSecret: 'wrong',
    });
    await expect(source.get()).rejects.toThrow(
      /the OIDC provider: token request to .* failed: invalid_client/,
    );
  });

  it('on a 401 from the workspace API drops the token, fetches a new one and retries', async () => {
    const ws = new TestWorkspace();
    await ws.reset(250);
    await ws.requireAuth();
    const source = new OidcTokenSource({
      oidc: env('OIDC_ISSUER'),
      clientId: CLIENT_ID(),
      clientSecret: CLIENT_SECRET(),
    });
    expect(await readAll(reader(ws, source))).toBe(250);
    expect(source.fetches).toBe(1);
    const before = await source.get();
    await ws.control('revoke', {}); // the API stops accepting every token it has seen
    expect(await readAll(reader(ws, source))).toBe(250);
    expect(source.fetches).toBe(2);
    expect(await source.get()).not.toBe(before);
    const stats = await ws.stats();
    expect(stats.unauthorized).toBe(1);
    expect(stats.tokens).toBe(2);
  });

  it('without a token the protected API answers 401 and the reader says so', async () => {
    const ws = new TestWorkspace();
    await ws.reset(1);
    await ws.requireAuth();
    const r = new WorkspaceReader({
      url: ws.url,
      query: DEFAULT_CURSOR_QUERY,
      paging: 'cursor',
      itemsPath: 'items',
      idField: 'id',
      pageSize: 10,
      timeoutMs: 2000,
      retries: 3,
      retryBaseMs: 10,
    });
    await expect(readAll(r)).rejects.toThrow(/HTTP 401/);
    expect(r.retries).toBe(0); // a 401 is not retried blindly
  });
});
