import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, type Daemon } from '../support/daemon.ts';
import { testDatabase } from '../support/db.ts';
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

  it('exits 2 on 0.0.0.0 without auth, naming --insecure-listen', async () => {
    const port = await freePort();
    const d = start(port, []);
    const { code, served } = await watchUntilExit(d, `http://127.0.0.1:${port}/info`);
    expect(served).toEqual([]);
    expect(code).toBe(2);
    expect(d.stderr()).toMatch(/--insecure-listen/);
  });
});

describe("start-job's job API takes the --auth-* flags only", () => {
  const ws = new TestWorkspace();
  beforeAll(async () => {
    await ws.reset(5);
  });
  const startJob = (host: string, port: number) =>
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
    ]);

  it('on 127.0.0.1 with only a workspace --oidc token endpoint, GET /jobs answers 200', async () => {
    const port = await freePort();
    const d = startJob('127.0.0.1', port);
    try {
      let status = 0;
      const deadline = Date.now() + 30_000;
      while (status === 0 && Date.now() < deadline && d.proc.exitCode === null) {
        const res = await fetch(`http://127.0.0.1:${port}/jobs`).catch(() => undefined);
        status = res?.status ?? 0;
        if (!status) await new Promise((r) => setTimeout(r, 100));
      }
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
});
