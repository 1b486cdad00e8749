import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Authenticator, authOptions } from '../../src/api/auth.ts';
import { runCli, waitStreaming, type Daemon } from '../support/daemon.ts';
import { testDatabase } from '../support/db.ts';
import { freePort } from '../support/ports.ts';
import { startProvider } from '../support/oidc.ts';
import {
  accessClaims,
  clientToken,
  hs256WithPublicKey,
  issuer,
  signedByForeignKey,
  signedByIssuer,
  unsigned,
} from '../support/oidc-tokens.ts';

/**
 * JWT access tokens for the API, against the real OpenID provider (oidc-provider, test/support/oidc.ts):
 * every token kind with the status it must get (docs/security.md).
 */

const API = 'urn:tag-connector';
const now = () => Math.floor(Date.now() / 1000);

/** Token kind → the status /info must answer → why (the 401 message) → how to get the token. */
const CASES: [string, number, RegExp | null, () => Promise<string | undefined>][] = [
  ['a good token (client credentials, aud tag-connector)', 200, null, () => clientToken({ resource: API })],
  ['no token', 401, /missing bearer token/, async () => undefined],
  ['a token for another audience', 401, /claim aud/, () => clientToken({ resource: 'urn:some-other-app' })],
  ['an opaque token (no audience)', 401, /invalid token/, () => clientToken()],
  [
    'an expired token (signed by the issuer, 2 min past exp)',
    401,
    /expired/,
    () => signedByIssuer(accessClaims({ iat: now() - 900, exp: now() - 120 })),
  ],
  ['a token signed by an unknown key', 401, /key/, () => signedByForeignKey(accessClaims())],
  ['alg none', 401, /algorithm none/, async () => unsigned(accessClaims())],
  [
    'HS256 keyed with the issuer public key',
    401,
    /algorithm HS256/,
    async () => hs256WithPublicKey(accessClaims()),
  ],
  [
    'an ID token (signed by the issuer, aud tag-connector)',
    401,
    /ID token/,
    () =>
      signedByIssuer(
        { iss: issuer(), aud: 'tag-connector', sub: 'user-1', nonce: 'n-1', iat: now(), exp: now() + 600 },
        'JWT',
      ),
  ],
];

describe('JWT auth against the real OpenID provider (in-process Authenticator)', () => {
  const auth = (o: { issuer?: string; clients?: string[] } = {}) =>
    Authenticator.fromOptions(
      authOptions({
        serverHost: '127.0.0.1',
        insecureListen: false,
        authJwtIssuer: o.issuer ?? issuer(),
        authJwtAudience: 'tag-connector',
        authJwtClients: o.clients,
      }),
    );
  const status = async (a: Authenticator, token: string | undefined) =>
    a.authenticate(token === undefined ? undefined : `Bearer ${token}`).then(
      () => 200,
      (err: { statusCode?: number }) => err.statusCode ?? 500,
    );

  it.each(CASES)('%s → %i', async (_what, want, why, token) => {
    const t = await token();
    expect(await status(auth(), t)).toBe(want);
    if (why)
      await expect(auth().authenticate(t === undefined ? undefined : `Bearer ${t}`)).rejects.toThrow(why);
  });

  it('accepts up to 60 s of clock skew, not more', async () => {
    const a = auth();
    expect(await status(a, await signedByIssuer(accessClaims({ iat: now() - 700, exp: now() - 30 })))).toBe(
      200,
    );
    expect(await status(a, await signedByIssuer(accessClaims({ iat: now() - 700, exp: now() - 90 })))).toBe(
      401,
    );
    expect(await status(a, await signedByIssuer(accessClaims({ nbf: now() + 120 })))).toBe(401);
  });

  it("refuses another client's token when --auth-jwt-clients lists the allowed ones", async () => {
    const a = auth({ clients: ['tagc-test'] });
    expect(await status(a, await clientToken({ resource: API }))).toBe(200);
    const other = await clientToken({
      resource: API,
      clientId: process.env.OIDC_WS_CLIENT_ID,
      secret: process.env.OIDC_WS_CLIENT_SECRET,
    });
    expect(await status(a, other)).toBe(401);
    expect(await status(auth(), other)).toBe(200);
  });

  it('takes roles from the token scope and workspaces from its claims', async () => {
    const a = auth();
    const streamOnly = await a.authenticate(
      `Bearer ${await clientToken({ resource: API, scope: 'stream' })}`,
    );
    expect([...streamOnly.roles]).toEqual(['stream']);
    const full = await a.authenticate(`Bearer ${await clientToken({ resource: API })}`);
    expect([...full.roles].sort()).toEqual(['admin', 'snapshot', 'stream']);
    const w1 = await a.authenticate(
      `Bearer ${await clientToken({ resource: API, clientId: 'tagc-w1', scope: 'stream snapshot admin' })}`,
    );
    expect(w1.workspaces).toEqual(['w1']);
    // A workspace-scoped token is never admin, whatever scope it was given.
    expect([...w1.roles].sort()).toEqual(['snapshot', 'stream']);
  });

  describe('an issuer whose identifier ends in a slash', () => {
    let slashed: { issuer: string; pid: number };
    beforeAll(async () => {
      slashed = await startProvider(process.pid, process.env.OIDC_JWKS_FILE, (p) => `http://127.0.0.1:${p}/`);
    });
    afterAll(() => {
      try {
        process.kill(slashed.pid);
      } catch {
        // already gone
      }
    });

    it('is compared exactly as discovery gives it, slash included', async () => {
      const token = await clientToken({ resource: API, issuer: slashed.issuer });
      const iss = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).iss;
      expect(iss).toBe(slashed.issuer);
      expect(iss.endsWith('/')).toBe(true);
      expect(await status(auth({ issuer: slashed.issuer }), token)).toBe(200);
      // Configured without the slash, discovery still says which issuer to expect.
      expect(await status(auth({ issuer: slashed.issuer.replace(/\/$/, '') }), token)).toBe(200);
      // The other issuer's token is not this one's.
      expect(await status(auth({ issuer: slashed.issuer }), await clientToken({ resource: API }))).toBe(401);
    });
  });
});

describe('extract-tasks --auth-jwt-issuer <it> --auth-jwt-audience tag-connector', () => {
  let db: { url: string; drop: () => Promise<void> };
  let d: Daemon;
  let base: string;
  beforeAll(async () => {
    db = await testDatabase('jwt');
    const dir = mkdtempSync(join(tmpdir(), 'tagc-jwt-'));
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    d = runCli([
      'extract-tasks',
      '--pg-url',
      db.url,
      '--slot',
      'jwt_slot',
      '--sink',
      'file',
      '--file-path',
      join(dir, 'e.ndjson'),
      '--serverHost',
      '0.0.0.0',
      '--serverPort',
      String(port),
      '--stream-retention-dir',
      join(dir, 's'),
      '--auth-jwt-issuer',
      issuer(),
      '--auth-jwt-audience',
      'tag-connector',
    ]);
    await waitStreaming(d);
  });
  afterAll(async () => {
    await d?.kill('SIGTERM');
    await db?.drop();
  });

  it.each(CASES)('GET /info with %s → %i', async (_what, want, _why, token) => {
    const t = await token();
    const res = await fetch(`${base}/info`, { headers: t ? { authorization: `Bearer ${t}` } : {} });
    expect(res.status).toBe(want);
    if (want === 401) expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
  });

  it('exits 2 when --auth-jwt-audience is missing', async () => {
    const e = runCli(['extract-tasks', '--auth-jwt-issuer', issuer()]);
    const exit = await e.exit;
    expect(exit.code).toBe(2);
    expect(e.stderr()).toMatch(/authJwtAudience|auth-jwt-audience/);
  });
});
