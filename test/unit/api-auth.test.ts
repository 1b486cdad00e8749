import { describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import {
  Authenticator,
  authOptions,
  isLoopback,
  parseTokenFile,
  scopeTables,
  scopeWorkspaces,
  StaticTokens,
  TokenFileError,
  type Credential,
} from '../../src/api/auth.ts';
import { ConnectorError } from '../../src/errors.ts';
import { loadConfig, ConfigError } from '../../src/config/index.ts';

const tmp = mkdtempSync(join(tmpdir(), 'tagc-auth-unit-'));
let n = 0;
function file(text: string): string {
  const p = join(tmp, `tokens-${n++}`);
  writeFileSync(p, text);
  return p;
}
const sha = (t: string) => `sha256:${createHash('sha256').update(t).digest('hex')}`;

describe('the tokens file (parsed strictly)', () => {
  it('reads token lines, skipping comments and blank lines', () => {
    const e = parseTokenFile('# ops\n\n  tok-a  \ntok-b\n');
    expect(e.map((x) => x.token)).toEqual(['tok-a', 'tok-b']);
  });

  it.each([
    ['empty', ''],
    ['comment only', '# nothing here\n\n'],
    ['an empty YAML list', '- \n'],
  ])('refuses a file holding no token (%s)', (_what, text) => {
    expect(() => parseTokenFile(text)).toThrow(TokenFileError);
  });

  it.each([
    ['workspaces as a string', '- token: t1\n  workspaces: w1\n', /workspaces.*list/],
    ['tables as a string', '- token: t1\n  tables: public.a\n', /tables.*list/],
    ['a bare table name', '- token: t1\n  tables: [items]\n', /schema\.table/],
    ['an unknown key', '- token: t1\n  workspace: [w1]\n', /workspace/],
    ['an unknown role', '- token: t1\n  roles: [root]\n', /roles/],
    ['a missing token', '- name: x\n', /token/],
    ['a bad hash', '- token: sha256:abc\n', /64 hex/],
    ['a scoped admin', '- token: t1\n  workspaces: [w1]\n  roles: [admin]\n', /admin/],
    ['a duplicate', `- token: t1\n- token: ${sha('t1')}\n`, /twice/],
  ])('refuses YAML entries failing the schema: %s', (_what, text, why) => {
    expect(() => parseTokenFile(text)).toThrow(why);
  });

  it('gives scoped entries stream + snapshot, unscoped ones every role, named roles as named', () => {
    const tokens = new StaticTokens(
      parseTokenFile(
        '- token: full\n- token: w1\n  workspaces: [w1]\n- token: s\n  roles: [stream]\n' +
          `- token: ${sha('hashed-one')}\n  name: hashed\n  tables: [public.items]\n`,
      ),
    );
    const roles = (t: string) => [...(tokens.lookup(t)?.roles ?? [])].sort();
    expect(roles('full')).toEqual(['admin', 'snapshot', 'stream']);
    expect(roles('w1')).toEqual(['snapshot', 'stream']);
    expect(roles('s')).toEqual(['stream']);
    expect(tokens.lookup('hashed-one')).toMatchObject({ subject: 'hashed', tables: ['public.items'] });
    // Knowing the hash is not knowing the token.
    expect(tokens.lookup(sha('hashed-one'))).toBeNull();
    expect(tokens.lookup('nope')).toBeNull();
  });

  it('finds every stored token and no other (property)', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.stringMatching(/^[\x21-\x7e]{1,40}$/), { minLength: 1, maxLength: 8 }),
        fc.stringMatching(/^[\x21-\x7e]{1,40}$/),
        (list, other) => {
          const clean = list.filter((t) => !t.startsWith('#') && !/^sha256:/i.test(t) && !t.startsWith('-'));
          fc.pre(clean.length > 0);
          const tokens = new StaticTokens(parseTokenFile(clean.join('\n')));
          for (const t of clean) expect(tokens.lookup(t)).not.toBeNull();
          if (!clean.includes(other)) expect(tokens.lookup(other)).toBeNull();
        },
      ),
    );
  });
});

describe('Authenticator.fromOptions fails closed', () => {
  const opts = (o: Partial<Parameters<typeof authOptions>[0]>) =>
    authOptions({ serverHost: '127.0.0.1', insecureListen: false, ...o });
  const exit2 = (fn: () => unknown, flag: RegExp) => {
    try {
      fn();
    } catch (err) {
      expect(err).toBeInstanceOf(ConnectorError);
      expect((err as ConnectorError).exitCode).toBe(2);
      expect((err as Error).message).toMatch(flag);
      return;
    }
    throw new Error('expected a config error');
  };

  it('refuses an empty, comment-only or unreadable tokens file, naming the flag', () => {
    exit2(() => Authenticator.fromOptions(opts({ authTokensFile: file('') })), /--auth-tokens-file/);
    exit2(() => Authenticator.fromOptions(opts({ authTokensFile: file('# x\n') })), /no token/);
    exit2(() => Authenticator.fromOptions(opts({ authTokensFile: join(tmp, 'missing') })), /cannot read/);
    exit2(
      () => Authenticator.fromOptions(opts({ authTokensFile: file('- token: a\n  workspaces: w1\n') })),
      /entry 1 workspaces/,
    );
  });

  it('refuses a non-loopback address without auth unless --insecure-listen', () => {
    exit2(() => Authenticator.fromOptions(opts({ serverHost: '0.0.0.0' })), /--serverHost 0\.0\.0\.0/);
    exit2(() => Authenticator.fromOptions(opts({ serverHost: '::' })), /--insecure-listen/);
    expect(Authenticator.fromOptions(opts({ serverHost: '0.0.0.0', insecureListen: true })).enabled).toBe(
      false,
    );
    expect(Authenticator.fromOptions(opts({ serverHost: '127.0.0.1' })).enabled).toBe(false);
    const withTokens = Authenticator.fromOptions(
      opts({ serverHost: '0.0.0.0', authTokensFile: file('t\n') }),
    );
    expect(withTokens.enabled).toBe(true);
  });

  it('serves anonymous callers every role only while no auth is configured', async () => {
    const open = Authenticator.fromOptions(opts({}));
    expect((await open.authenticate(undefined)).kind).toBe('anonymous');
    const closed = Authenticator.fromOptions(opts({ authTokensFile: file('tok-1\n') }));
    await expect(closed.authenticate(undefined)).rejects.toMatchObject({ statusCode: 401 });
    await expect(closed.authenticate('Bearer nope')).rejects.toMatchObject({ statusCode: 401 });
    await expect(closed.authenticate('Basic dG9rLTE=')).rejects.toMatchObject({ statusCode: 401 });
    expect((await closed.authenticate('Bearer tok-1')).kind).toBe('static');
  });

  it('never takes the workspace client --oidc as API auth', () => {
    const c = loadConfig({ env: {}, flags: { oidc: 'http://127.0.0.1:1/token', serverHost: '127.0.0.1' } });
    expect(Authenticator.fromOptions(authOptions(c)).enabled).toBe(false);
  });
});

describe('API auth config', () => {
  it('requires --auth-jwt-audience with --auth-jwt-issuer', () => {
    expect(() => loadConfig({ env: {}, flags: { authJwtIssuer: 'https://id.example' } })).toThrow(
      /authJwtAudience/,
    );
    expect(() => loadConfig({ env: {}, flags: { authJwtAudience: 'x' } })).toThrow(ConfigError);
    const c = loadConfig({
      env: {},
      flags: {
        authJwtIssuer: 'https://id.example/',
        authJwtAudience: 'tag-connector',
        authJwtClients: 'a,b',
      },
    });
    expect(c.authJwtClients).toEqual(['a', 'b']);
    expect(c.snapshotMaxConcurrent).toBe(2);
  });
});

describe('scopes', () => {
  const cred = (o: Partial<Credential>): Credential => ({
    subject: 't',
    kind: 'static',
    roles: new Set(['stream']),
    workspaces: null,
    tables: null,
    ...o,
  });

  it('narrows tables to schema.table names; a bare name stands for the allowed tables of that name', () => {
    const c = cred({ tables: ['public.items', 'other.things'] });
    expect(scopeTables(c, null)).toEqual(new Set(['public.items', 'other.things']));
    expect(scopeTables(c, new Set(['items']))).toEqual(new Set(['public.items']));
    expect(scopeTables(c, new Set(['public.items']))).toEqual(new Set(['public.items']));
    expect(() => scopeTables(c, new Set(['secret.items']))).toThrow(/secret\.items/);
    expect(() => scopeTables(c, new Set(['users']))).toThrow(/users/);
    expect(scopeTables(cred({}), new Set(['items']))).toEqual(new Set(['items']));
  });

  it('narrows workspaces; asking for another is a 403', () => {
    const c = cred({ workspaces: ['w1'] });
    expect(scopeWorkspaces(c, null)).toEqual(new Set(['w1']));
    expect(() => scopeWorkspaces(c, new Set(['w1', 'w2']))).toThrow(
      expect.objectContaining({ statusCode: 403 }),
    );
  });
});

describe('isLoopback', () => {
  it.each([
    ['127.0.0.1', true],
    ['127.1.2.3', true],
    ['::1', true],
    ['[::1]', true],
    ['localhost', true],
    ['::ffff:127.0.0.1', true],
    ['0.0.0.0', false],
    ['::', false],
    ['10.0.0.1', false],
    ['127.example.com', false],
  ])('%s → %s', (host, want) => expect(isLoopback(host)).toBe(want));
});
