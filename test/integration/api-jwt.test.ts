/** @services pg oidc */
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { mkdtempSync } from 'node:fs';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Authenticator, authOptions } from '../../src/api/auth.ts';
import { runCli, waitStreaming, type Daemon } from '../support/daemon.ts';
import { testDatabase } from '../support/db.ts';
import { freePort } from '../support/ports.ts';
import { startProvider, writeSigningKeys } from '../support/oidc.ts';
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

/**
 * A pass-through proxy in front of the provider that counts JWKS fetches: the issuer is the proxy's
 * address, so a provider restarted with new keys (on another port) keeps the same issuer.
 */
/** Every timer API jest can fake but Date (the JWKS cache reads Date.now; the I/O keeps real timers). */
const NOT_DATE = [
  'hrtime',
  'nextTick',
  'performance',
  'queueMicrotask',
  'requestAnimationFrame',
  'cancelAnimationFrame',
  'requestIdleCallback',
  'cancelIdleCallback',
  'setImmediate',
  'clearImmediate',
  'setInterval',
  'clearInterval',
  'setTimeout',
  'clearTimeout',
] as const;

async function countingProxy() {
  let upstream = 0;
  let jwksFetches = 0;
  const server = createServer((req, res) => {
    if (req.method === 'GET' && req.url?.split('?')[0] === '/jwks') jwksFetches++;
    const out = request(
      { host: '127.0.0.1', port: upstream, method: req.method, path: req.url, headers: req.headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    out.on('error', () => res.destroy());
    req.pipe(out);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    jwksFetches: () => jwksFetches,
    /** Starts a provider for this issuer with the given signing keys; the proxy forwards to it. */
    provider: async (jwksFile: string) =>
      startProvider(process.pid, jwksFile, (port) => {
        upstream = port;
        return url;
      }),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

describe('JWKS keys are cached and rotated (an unknown kid refetches the set, at most once per cooldown)', () => {
  let proxy: Awaited<ReturnType<typeof countingProxy>>;
  const pids: number[] = [];
  const keys = async () => writeSigningKeys(mkdtempSync(join(tmpdir(), 'tagc-rotate-')));
  const kidOf = (t: string) => JSON.parse(Buffer.from(t.split('.')[0]!, 'base64url').toString()).kid;
  beforeAll(async () => {
    proxy = await countingProxy();
  });
  afterAll(async () => {
    for (const pid of pids)
      try {
        process.kill(pid);
      } catch {
        // already gone
      }
    await proxy?.close();
  });

  it('fetches the keys once, refetches for a new kid, and not again for another within the cooldown', async () => {
    const a = Authenticator.fromOptions(
      authOptions({
        serverHost: '127.0.0.1',
        insecureListen: false,
        authJwtIssuer: proxy.url,
        authJwtAudience: 'tag-connector',
      }),
    );
    const status = (t: string) =>
      a.authenticate(`Bearer ${t}`).then(
        () => 200,
        (err: { statusCode?: number }) => err.statusCode ?? 500,
      );
    const token = () => clientToken({ resource: API, issuer: proxy.url });
    const rotate = async () => {
      const old = pids.pop();
      pids.push((await proxy.provider(await keys())).pid);
      if (old) process.kill(old);
    };
    // The JWKS cooldown (30 s) is measured on the clock: the test moves Date only, not the timers, so
    // it need not sleep through it. The tokens (10 min) stay valid across the moves.
    const t0 = Date.now();
    jest.useFakeTimers({ now: t0, doNotFake: [...NOT_DATE] });
    try {
      await rotate();
      const first = await token();
      expect(await status(first)).toBe(200);
      expect(await status(await token())).toBe(200);
      expect(proxy.jwksFetches()).toBe(1); // cached

      // Rotation past the cooldown: the issuer signs with a new key, unknown to the cache.
      jest.setSystemTime(t0 + 31_000);
      await rotate();
      const rotated = await token();
      expect(kidOf(rotated)).not.toBe(kidOf(first));
      expect(await status(rotated)).toBe(200);
      expect(proxy.jwksFetches()).toBe(2); // one refetch for the new kid

      // Another new key within the cooldown: no refetch, so forged kids cannot hammer the issuer.
      jest.setSystemTime(t0 + 32_000);
      await rotate();
      const third = await token();
      expect(await status(third)).toBe(401);
      for (let i = 0; i < 5; i++) expect(await status(await signedByForeignKey(accessClaims()))).toBe(401);
      expect(proxy.jwksFetches()).toBe(2);

      // Once the cooldown has passed, the next unknown kid refetches again.
      jest.setSystemTime(t0 + 62_000);
      expect(await status(third)).toBe(200);
      expect(proxy.jwksFetches()).toBe(3);
    } finally {
      jest.useRealTimers();
    }
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
