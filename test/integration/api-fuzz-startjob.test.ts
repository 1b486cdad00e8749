/** @services oidc mongo graphql */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, type Daemon } from '../support/daemon.ts';
import { freePort } from '../support/ports.ts';
import { runSchemathesis } from '../support/schemathesis.ts';
import { CLIENT_ID, CLIENT_SECRET, env, mongoUrl, TestWorkspace } from './startjob/helpers.ts';

/**
 * start-job's job API under schemathesis with all its checks, as api-fuzz.test.ts does for
 * extract-tasks: the documented statuses, content types and schemas, auth, 405 for undeclared methods.
 */

describe("schema-driven fuzzing of start-job's job API (schemathesis)", () => {
  const ws = new TestWorkspace();
  let d: Daemon;
  let base: string;
  beforeAll(async () => {
    await ws.reset(5);
    const dir = mkdtempSync(join(tmpdir(), 'tagc-fuzz-sj-'));
    writeFileSync(join(dir, 'tokens'), 'fuzz-startjob-token\n');
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    d = runCli([
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
      '--serverPort',
      String(port),
      '--auth-tokens-file',
      join(dir, 'tokens'),
      '--cron-pattern-healing-job',
      '0 0 0 1 1 *',
      '--cron-pattern-dump-job',
      '0 0 0 1 1 *',
    ]);
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && d.proc.exitCode === null) {
      const res = await fetch(`${base}/readyz`).catch(() => undefined);
      if (res?.status === 200) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`start-job did not get ready: ${d.stderr().slice(-2000)}`);
  });
  afterAll(async () => {
    await d?.kill('SIGTERM');
  });

  it('passes every schemathesis check (--checks all)', async () => {
    const out = await runSchemathesis(base, { token: 'fuzz-startjob-token', maxExamples: 25 });
    expect(out).toMatch(/passed|No issues found/i);
    expect(out).not.toMatch(/Failures:/);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect(d.proc.exitCode).toBeNull();
  }, 240_000);
});
