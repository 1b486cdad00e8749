import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryPublisher } from '../../../src/startjob/events.ts';
import { buildStartJob, type StartJob } from '../../../src/startjob/index.ts';
import { logger, testConfig, TestWorkspace } from './helpers.ts';

/**
 * Requests over the real loopback socket. (`app.inject()` goes through light-my-request, which
 * `require`s the ESM-only cookie@2: jest's module runtime refuses that, Node itself would not.)
 */
async function call(
  sj: StartJob,
  req: { method: string; url: string; headers?: Record<string, string> },
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are checked by expect()
): Promise<{ statusCode: number; json: () => any }> {
  const res = await fetch(`${sj.address}${req.url}`, { method: req.method, headers: req.headers });
  const text = await res.text();
  return { statusCode: res.status, json: () => JSON.parse(text) };
}

describe('start-job job API (fastify, real servers behind it)', () => {
  const ws = new TestWorkspace();
  let sj: StartJob;
  beforeAll(async () => {
    await ws.reset(300);
    await ws.control('delay', { ms: 150 });
    sj = await buildStartJob(testConfig(ws, { wsPageSize: 50 }), {
      publisher: new MemoryPublisher(),
      logger,
    });
    await sj.start();
  });
  afterAll(async () => {
    await sj.store.drop();
    await sj.stop();
  });

  it('refuses healing before an initial sync with 409 {error, message}', async () => {
    const res = await call(sj, { method: 'POST', url: '/healing-jobs' });
    expect(res.statusCode).toBe(409);
    expect(res.json()).toEqual({
      error: 'needs-initial-sync',
      message: expect.stringContaining('initial sync'),
    });
  });

  it('schedules, refuses an overlap, lists, cancels, and 404s when nothing is left to cancel', async () => {
    const post = await call(sj, { method: 'POST', url: '/initial-sync-jobs' });
    expect(post.statusCode).toBe(201);
    const run = post.json().run;
    expect(run).toMatchObject({ kind: 'initial-sync', status: 'scheduled', trigger: 'api', full: true });
    expect(run.id).toMatch(/^initial-sync-/);

    const again = await call(sj, { method: 'POST', url: '/initial-sync-jobs' });
    expect(again.statusCode).toBe(409);
    expect(again.json().error).toBe('overlap');

    const list = await call(sj, { method: 'GET', url: '/jobs' });
    expect(list.statusCode).toBe(200);
    const body = list.json();
    expect(body.initialSyncSucceeded).toBe(false);
    expect(body.kinds['initial-sync'].active).toBe(true);
    expect(body.runs[0]).toMatchObject({ id: run.id, status: expect.stringMatching(/scheduled|busy/) });

    const del = await call(sj, { method: 'DELETE', url: '/initial-sync-jobs' });
    expect(del.statusCode).toBe(200);
    expect(del.json().canceled).toEqual([expect.objectContaining({ id: run.id, status: 'canceled' })]);
    const none = await call(sj, { method: 'DELETE', url: '/initial-sync-jobs' });
    expect(none.statusCode).toBe(404);
    expect(none.json()).toEqual({ error: 'not_found', message: 'no scheduled or busy initial-sync run' });
  });

  it('a completed run shows timings and counts; healing and dump then follow their rules', async () => {
    await ws.control('delay', { ms: 0 });
    expect((await call(sj, { method: 'POST', url: '/initial-sync-jobs' })).statusCode).toBe(201);
    await sj.jobs.idle();
    const res = await call(sj, { method: 'GET', url: '/jobs?kind=initial-sync&status=success' });
    const [run] = res.json().runs;
    expect(run).toMatchObject({
      status: 'success',
      error: null,
      counts: { items: 300, created: 300, changed: 0, deleted: 0, unchanged: 0, emitted: 300 },
    });
    expect(run.durationMs).toBeGreaterThanOrEqual(0);
    expect(Date.parse(run.finishedAt)).toBeGreaterThanOrEqual(Date.parse(run.startedAt));

    expect((await call(sj, { method: 'POST', url: '/healing-jobs' })).statusCode).toBe(201);
    // dump is disabled by default (ENABLE_DUMP_FILE_CREATION=false)
    const dump = await call(sj, { method: 'POST', url: '/dump-publication-graph-jobs' });
    expect(dump.statusCode).toBe(409);
    expect(dump.json().error).toBe('disabled');
    await sj.jobs.idle();
  });

  it('validates input and answers unknown routes with JSON errors', async () => {
    const bad = await call(sj, { method: 'GET', url: '/jobs?limit=0' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ error: 'bad_request', message: expect.stringContaining('limit') });
    const unknown = await call(sj, { method: 'GET', url: '/jobs?color=red' });
    expect(unknown.statusCode).toBe(400);
    const kind = await call(sj, { method: 'GET', url: '/jobs?kind=nope' });
    expect(kind.statusCode).toBe(400);
    const wrongMethod = await call(sj, { method: 'PUT', url: '/healing-jobs' });
    expect(wrongMethod.statusCode).toBe(405);
    expect(wrongMethod.json().error).toBe('method_not_allowed');
    const missing = await call(sj, { method: 'GET', url: '/no-such-jobs' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error).toBe('not_found');
  });

  it('answers health, readiness and the OpenAPI document', async () => {
    expect((await call(sj, { method: 'GET', url: '/healthz' })).json()).toEqual({ ok: true });
    expect((await call(sj, { method: 'GET', url: '/readyz' })).json()).toEqual({ ok: true });
    const doc = (await call(sj, { method: 'GET', url: '/openapi.json' })).json();
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        '/initial-sync-jobs',
        '/healing-jobs',
        '/dump-publication-graph-jobs',
        '/jobs',
      ]),
    );
  });

  it('serves on a real loopback socket', async () => {
    const res = await fetch(`${sj.address}/jobs?limit=1`);
    expect(res.status).toBe(200);
    expect((await res.json()).runs).toHaveLength(1);
  });
});

describe('start-job job API with the shared bearer auth (src/api/auth.ts)', () => {
  it('refuses requests without a valid token; health stays open', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tagc-auth-'));
    writeFileSync(join(dir, 'tokens'), 'sekret-token-1\n');
    const ws = new TestWorkspace();
    const sj = await buildStartJob(testConfig(ws, { authTokensFile: join(dir, 'tokens') }), {
      publisher: new MemoryPublisher(),
      logger,
    });
    try {
      await sj.start();
      expect(sj.authenticated).toBe(true);
      const none = await call(sj, { method: 'GET', url: '/jobs' });
      expect(none.statusCode).toBe(401);
      expect(none.json()).toMatchObject({ error: 'unauthorized' });
      const wrong = await call(sj, {
        method: 'POST',
        url: '/initial-sync-jobs',
        headers: { authorization: 'Bearer nope' },
      });
      expect(wrong.statusCode).toBe(401);
      const ok = await call(sj, {
        method: 'GET',
        url: '/jobs',
        headers: { authorization: 'Bearer sekret-token-1' },
      });
      expect(ok.statusCode).toBe(200);
      expect((await call(sj, { method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    } finally {
      await sj.store.drop();
      await sj.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
