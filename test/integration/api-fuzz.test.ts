import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, waitStreaming, type Daemon } from '../support/daemon.ts';
import { sql, testDatabase } from '../support/db.ts';
import { freePort } from '../support/ports.ts';
import { runSchemathesis } from '../support/schemathesis.ts';

describe('schema-driven fuzzing of the HTTP API (schemathesis)', () => {
  let db: { url: string; drop: () => Promise<void> };
  let d: Daemon;
  let base: string;
  beforeAll(async () => {
    db = await testDatabase('fuzz');
    await sql(db.url, `CREATE TABLE things (id int PRIMARY KEY, workspace text, v jsonb)`);
    await sql(
      db.url,
      `INSERT INTO things SELECT g, 'w' || (g % 3), '{"a": 1}' FROM generate_series(1, 50) g`,
    );
    const dir = mkdtempSync(join(tmpdir(), 'tagc-fuzz-'));
    writeFileSync(join(dir, 'tokens'), 'fuzz-token\n');
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    d = runCli([
      'extract-tasks',
      '--pg-url',
      db.url,
      '--slot',
      'fuzz_slot',
      '--sink',
      'file',
      '--file-path',
      join(dir, 'e.ndjson'),
      '--serverPort',
      String(port),
      '--auth-tokens-file',
      join(dir, 'tokens'),
      '--stream-retention-dir',
      join(dir, 's'),
    ]);
    await waitStreaming(d);
  });
  afterAll(async () => {
    await d?.kill('SIGTERM');
    await db.drop();
  });

  it('passes every schemathesis check (--checks all): statuses, content types, schemas, auth, methods', async () => {
    // The Stream answers a valid request with an endless response, so it is fuzzed for its 4xx
    // paths by api.test.ts; every other route here, with and without a token.
    const out = await runSchemathesis(base, {
      token: 'fuzz-token',
      maxExamples: 40,
      extraArgs: ['--exclude-path', '/v1/api/ws/Stream'],
    });
    expect(out).toMatch(/passed|No issues found/i);
    expect(out).not.toMatch(/Failures:/);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect(d.proc.exitCode).toBeNull();
  }, 240_000);
});
