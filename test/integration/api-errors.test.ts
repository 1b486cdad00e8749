import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, waitStreaming, type Daemon } from '../support/daemon.ts';
import { sql, testDatabase } from '../support/db.ts';
import { freePort } from '../support/ports.ts';

/**
 * What a running extract-tasks tells a client when a route fails inside (docs/security.md): a 5xx
 * names its request id only, the cause goes to the log under that id; a body over the limit is a 413.
 * And --metrics-public opens /metrics alone, nothing else.
 */
describe('extract-tasks error answers (tokens file, --metrics-public)', () => {
  let db: { url: string; drop: () => Promise<void> };
  let d: Daemon;
  let base: string;
  const admin = { authorization: 'Bearer errors-admin-token' };
  beforeAll(async () => {
    db = await testDatabase('apierr');
    const dir = mkdtempSync(join(tmpdir(), 'tagc-apierr-'));
    writeFileSync(join(dir, 'tokens'), 'errors-admin-token\n');
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    d = runCli([
      'extract-tasks',
      '--pg-url',
      db.url,
      '--slot',
      'apierr_slot',
      '--sink',
      'file',
      '--file-path',
      join(dir, 'e.ndjson'),
      '--serverPort',
      String(port),
      '--stream-retention-dir',
      join(dir, 's'),
      '--auth-tokens-file',
      join(dir, 'tokens'),
      '--metrics-public',
    ]);
    await waitStreaming(d);
  });
  afterAll(async () => {
    await d?.kill('SIGTERM');
    await db?.drop();
  });

  it('serves /metrics without a token, and every other non-public route still needs one', async () => {
    const metrics = await fetch(`${base}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toMatch(/^# HELP /m);
    expect((await fetch(`${base}/info`)).status).toBe(401);
    expect((await fetch(`${base}/v1/api/ws/Snapshot`)).status).toBe(401);
    expect((await fetch(`${base}/info`, { headers: admin })).status).toBe(200);
  });

  it('documents 400/401/403/404/409/410/429 on every operation, and answers an undeclared method 405', async () => {
    const doc = (await (await fetch(`${base}/openapi.json`, { headers: admin })).json()) as {
      paths: Record<string, Record<string, { responses?: Record<string, unknown> }>>;
    };
    const missing: string[] = [];
    for (const [path, item] of Object.entries(doc.paths))
      for (const [method, op] of Object.entries(item))
        for (const code of ['400', '401', '403', '404', '409', '410', '429'])
          if (!op.responses?.[code]) missing.push(`${method.toUpperCase()} ${path} ${code}`);
    expect(Object.keys(doc.paths).length).toBeGreaterThan(5);
    expect(missing).toEqual([]);
    // fetch() refuses to send TRACE, so a plain HTTP request.
    const trace = await new Promise<{ status: number; allow?: string; body: string }>((resolve, reject) => {
      const req = request(`${base}/info`, { method: 'TRACE', headers: admin }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, allow: res.headers.allow, body }));
      });
      req.on('error', reject);
      req.end();
    });
    expect(trace.status).toBe(405);
    expect(trace.allow).toMatch(/GET/);
    expect(JSON.parse(trace.body)).toMatchObject({ error: 'method_not_allowed' });
  });

  it('refuses a request body over the limit (64 KiB) with 413 before the route runs', async () => {
    const res = await fetch(`${base}/v1/api/backfills`, {
      method: 'POST',
      headers: { ...admin, 'content-type': 'application/json' },
      body: JSON.stringify({ tables: ['public.items'], where: 'x'.repeat(100 * 1024) }),
    });
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ error: 'payload_too_large' });
  });

  it('answers a failure inside a route with 500 and the request id only; the cause is logged under it', async () => {
    // An event store whose tables lack the columns the route reads: PostgreSQL refuses the query
    // (42703), an error no client mistake can cause, with a message naming our SQL.
    await sql(db.url, `CREATE SCHEMA IF NOT EXISTS tag_connector`);
    await sql(db.url, `CREATE TABLE tag_connector.etl_context (unrelated int)`);
    await sql(db.url, `CREATE TABLE tag_connector.event_store (unrelated int)`);
    try {
      const res = await fetch(`${base}/v1/api/etl-contexts`, { headers: admin });
      expect(res.status).toBe(500);
      const body = (await res.json()) as { error: string; message: string; requestId: string };
      expect(Object.keys(body).sort()).toEqual(['error', 'message', 'requestId']);
      expect(body.error).toBe('internal_error');
      expect(body.requestId).toMatch(/^[0-9a-f-]{36}$/);
      expect(body.message).toBe(`internal error; see the log for request ${body.requestId}`);
      // The cause is in the log, under the request id, and nowhere in the answer.
      const deadline = Date.now() + 5000;
      const logged = () =>
        d
          .stderr()
          .split('\n')
          .find((l) => l.includes(body.requestId));
      while (!logged() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const line = JSON.parse(logged() ?? '{}') as { err?: string; status?: number; url?: string };
      expect(line).toMatchObject({ status: 500, url: '/v1/api/etl-contexts' });
      expect(line.err).toMatch(/does not exist/);
      expect(JSON.stringify(body)).not.toMatch(/does not exist|etl_context|column/);
      // The daemon serves on.
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
    } finally {
      await sql(db.url, `DROP TABLE tag_connector.etl_context, tag_connector.event_store`);
    }
  });
});

describe('/readyz with auth on: the reason of a problem is for admins', () => {
  let d: Daemon;
  let base: string;
  const admin = { authorization: 'Bearer readyz-admin-token' };
  const streamOnly = { authorization: 'Bearer readyz-stream-token' };
  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tagc-readyz-'));
    writeFileSync(
      join(dir, 'tokens'),
      '- token: readyz-admin-token\n- token: readyz-stream-token\n  roles: [stream]\n',
    );
    // PostgreSQL is not there (a port nobody listens on): the daemon waits, /readyz says why.
    const pgPort = await freePort();
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    d = runCli([
      'extract-tasks',
      '--pg-url',
      `postgres://readyz_user@127.0.0.1:${pgPort}/readyz_db`,
      '--sink',
      'file',
      '--file-path',
      join(dir, 'e.ndjson'),
      '--serverPort',
      String(port),
      '--stream-retention-dir',
      join(dir, 's'),
      '--auth-tokens-file',
      join(dir, 'tokens'),
    ]);
  });
  afterAll(async () => {
    await d?.kill('SIGTERM');
  });

  it('gives anyone the code, an admin token the message', async () => {
    const readyz = async (headers: Record<string, string> = {}) => {
      const res = await fetch(`${base}/readyz`, { headers }).catch(() => undefined);
      return res && { status: res.status, body: (await res.json()) as { reason?: string } };
    };
    const deadline = Date.now() + 30_000;
    let full = await readyz(admin);
    while (!full?.body.reason && Date.now() < deadline && d.proc.exitCode === null) {
      await new Promise((r) => setTimeout(r, 100));
      full = await readyz(admin);
    }
    expect(full).toMatchObject({ status: 503, body: { reason: expect.stringMatching(/ECONNREFUSED/) } });
    for (const headers of [{}, streamOnly, { authorization: 'Bearer nobody' }]) {
      const brief = await readyz(headers);
      expect(brief?.status).toBe(503);
      expect(brief?.body.reason).toBe(
        '[ECONNREFUSED] not ready (the log, or /readyz with an admin token, says why)',
      );
    }
  });
});
