/** @services pg oidc mongo graphql */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, type Daemon } from '../support/daemon.ts';
import { testDatabase } from '../support/db.ts';
import { clientToken, issuer } from '../support/oidc-tokens.ts';
import { freePort } from '../support/ports.ts';
import { CLIENT_ID, CLIENT_SECRET, env, mongoUrl, TestWorkspace } from './startjob/helpers.ts';

/**
 * Fail closed at the command line (issue 18's own checks): an auth source with no credential, or a
 * non-loopback address without auth, exits 2 and never serves; the workspace client's --oidc never
 * switches on the job API's auth.
 */

const dir = mkdtempSync(join(tmpdir(), 'tagc-listen-'));

/** Polls the daemon's /info until it exits; returns the exit and every status /info ever answered. */
async function watchUntilExit(d: Daemon, url: string): Promise<{ code: number | null; served: number[] }> {
  const served: number[] = [];
  let exited: { code: number | null } | undefined;
  void d.exit.then((e) => (exited = e));
  const deadline = Date.now() + 30_000;
  while (!exited && Date.now() < deadline) {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) }).catch(() => undefined);
    if (res) served.push(res.status);
    await new Promise((r) => setTimeout(r, 50));
  }
  if (!exited) await d.kill('SIGKILL');
  return { code: exited?.code ?? null, served };
}

/** The first status the daemon answers (0 if it exits or stays silent for 30 s). */
async function firstStatus(d: Daemon, url: string, headers: Record<string, string> = {}): Promise<number> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && d.proc.exitCode === null) {
    const res = await fetch(url, { headers, signal: AbortSignal.timeout(1000) }).catch(() => undefined);
    if (res) return res.status;
    await new Promise((r) => setTimeout(r, 100));
  }
  return 0;
}

describe('extract-tasks refuses to serve without a credential', () => {
  let db: { url: string; drop: () => Promise<void> };
  beforeAll(async () => {
    db = await testDatabase('listen');
  });
  afterAll(async () => db.drop());

  const start = (port: number, extra: string[]) =>
    runCli([
      'extract-tasks',
      '--pg-url',
      db.url,
      '--slot',
      'listen_slot',
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
      ...extra,
    ]);

  it.each([
    ['holds only a comment', '# tokens go here\n'],
    ['is empty', ''],
    ['has a YAML entry failing the schema', '- token: abc\n  workspaces: w1\n'],
  ])('exits 2 naming --auth-tokens-file when the tokens file %s; /info is never served', async (_w, text) => {
    const file = join(dir, `tokens-${Math.random().toString(36).slice(2)}`);
    writeFileSync(file, text);
    const port = await freePort();
    const d = start(port, ['--auth-tokens-file', file]);
    const { code, served } = await watchUntilExit(d, `http://127.0.0.1:${port}/info`);
    expect(served).toEqual([]);
    expect(code).toBe(2);
    expect(d.stderr()).toMatch(/--auth-tokens-file/);
  });

  it('exits 2 naming --auth-tokens-file when the tokens file cannot be read; /info is never served', async () => {
    const port = await freePort();
    const d = start(port, ['--auth-tokens-file', join(dir, 'no-such-tokens-file')]);
    const { code, served } = await watchUntilExit(d, `http://127.0.0.1:${port}/info`);
    expect(served).toEqual([]);
    expect(code).toBe(2);
    expect(d.stderr()).toMatch(/--auth-tokens-file .*no-such-tokens-file.*cannot read/);
  });

  it('exits 2 on 0.0.0.0 without auth, naming --insecure-listen', async () => {
    const port = await freePort();
    const d = start(port, []);
    const { code, served } = await watchUntilExit(d, `http://127.0.0.1:${port}/info`);
    expect(served).toEqual([]);
    expect(code).toBe(2);
    expect(d.stderr()).toMatch(/--insecure-listen/);
  });

  it('serves 0.0.0.0 without auth when told --insecure-listen', async () => {
    const port = await freePort();
    const d = start(port, ['--insecure-listen']);
    try {
      expect(await firstStatus(d, `http://127.0.0.1:${port}/info`)).toBe(200);
    } finally {
      await d.kill('SIGTERM');
    }
  });
});

describe("start-job's job API takes the --auth-* flags only", () => {
  const ws = new TestWorkspace();
  beforeAll(async () => {
    await ws.reset(5);
  });
  const startJob = (host: string, port: number, extra: string[] = []) =>
    runCli([
      'start-job',
      '--ws',
      ws.url,
      '--mongo-addr',
      mongoUrl(),
      '--oidc',
      `${env('OIDC_ISSUER')}/token`,
      '--client-id',
      CLIENT_ID(),
      '--client-secret',
      CLIENT_SECRET(),
      '--serverHost',
      host,
      '--serverPort',
      String(port),
      '--cron-pattern-healing-job',
      '0 0 0 1 1 *',
      '--cron-pattern-dump-job',
      '0 0 0 1 1 *',
      ...extra,
    ]);

  it('on 127.0.0.1 with only a workspace --oidc token endpoint, GET /jobs answers 200', async () => {
    const port = await freePort();
    const d = startJob('127.0.0.1', port);
    try {
      const status = await firstStatus(d, `http://127.0.0.1:${port}/jobs`);
      expect({ status, stderr: status === 200 ? '' : d.stderr().slice(-2000) }).toEqual({
        status: 200,
        stderr: '',
      });
    } finally {
      await d.kill('SIGTERM');
    }
  });

  it('on 0.0.0.0 with only a workspace --oidc, refuses to start (exit 2)', async () => {
    const port = await freePort();
    const d = startJob('0.0.0.0', port);
    const { code, served } = await watchUntilExit(d, `http://127.0.0.1:${port}/jobs`);
    expect(served).toEqual([]);
    expect(code).toBe(2);
    expect(d.stderr()).toMatch(/--insecure-listen/);
  });

  it('on 0.0.0.0 with --insecure-listen, serves without auth', async () => {
    const port = await freePort();
    const d = startJob('0.0.0.0', port, ['--insecure-listen']);
    try {
      expect(await firstStatus(d, `http://127.0.0.1:${port}/jobs`)).toBe(200);
    } finally {
      await d.kill('SIGTERM');
    }
  });

  it('exits 2 naming --auth-tokens-file when its tokens file holds no token', async () => {
    const file = join(dir, 'startjob-empty-tokens');
    writeFileSync(file, '# none yet\n');
    const port = await freePort();
    const d = startJob('0.0.0.0', port, ['--auth-tokens-file', file]);
    const { code, served } = await watchUntilExit(d, `http://127.0.0.1:${port}/jobs`);
    expect(served).toEqual([]);
    expect(code).toBe(2);
    expect(d.stderr()).toMatch(/--auth-tokens-file/);
  });

  it('on 0.0.0.0 with --auth-tokens-file (a sha256: entry), /jobs needs the token', async () => {
    const token = 'startjob-listen-token-0123456789';
    const file = join(dir, 'startjob-tokens');
    writeFileSync(file, `- token: sha256:${createHash('sha256').update(token).digest('hex')}\n  name: ops\n`);
    const port = await freePort();
    const d = startJob('0.0.0.0', port, ['--auth-tokens-file', file]);
    try {
      const url = `http://127.0.0.1:${port}/jobs`;
      expect(await firstStatus(d, url)).toBe(401);
      expect((await fetch(url, { headers: { authorization: 'Bearer not-it' } })).status).toBe(401);
      expect((await fetch(url, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    } finally {
      await d.kill('SIGTERM');
    }
  });

  it('with --auth-jwt-issuer/--auth-jwt-audience, takes the tokens of that audience only', async () => {
    const port = await freePort();
    const d = startJob('0.0.0.0', port, [
      '--auth-jwt-issuer',
      issuer(),
      '--auth-jwt-audience',
      'tag-connector',
    ]);
    try {
      const url = `http://127.0.0.1:${port}/jobs`;
      expect(await firstStatus(d, url)).toBe(401);
      const as = async (t: string) =>
        (await fetch(url, { headers: { authorization: `Bearer ${t}` } })).status;
      expect(await as(await clientToken({ resource: 'urn:tag-connector' }))).toBe(200);
      expect(await as(await clientToken({ resource: 'urn:some-other-app' }))).toBe(401);
      // The workspace client's own token (opaque, from --oidc) is no API credential.
      expect(await as(await clientToken())).toBe(401);
    } finally {
      await d.kill('SIGTERM');
    }
  });
});
