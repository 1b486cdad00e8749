import { afterEach, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { MemoryPublisher } from '../../../src/startjob/events.ts';
import { buildStartJob, type StartJob } from '../../../src/startjob/index.ts';
import { CLIENT_ID, CLIENT_SECRET, env, logger, testConfig, TestWorkspace } from './helpers.ts';

const open: StartJob[] = [];
async function startJob(ws: TestWorkspace, flags: Record<string, unknown> = {}) {
  const publisher = new MemoryPublisher();
  const sj = await buildStartJob(testConfig(ws, flags), { publisher, logger });
  open.push(sj);
  await sj.start();
  return { sj, publisher };
}

async function until<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs = 30_000,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const afterCleanup: (() => void)[] = [];
afterEach(async () => {
  for (const f of afterCleanup.splice(0)) f();
  for (const sj of open.splice(0)) {
    await sj.store.drop().catch(() => undefined);
    await sj.stop();
  }
});

describe('start-job jobs and chronology (real OIDC, GraphQL and FerretDB)', () => {
  it('refuses healing before a successful initial sync, then heals exactly', async () => {
    const ws = new TestWorkspace();
    await ws.reset(400);
    await ws.requireAuth();
    const { sj, publisher } = await startJob(ws, {
      oidc: env('OIDC_ISSUER'),
      clientId: CLIENT_ID(),
      clientSecret: CLIENT_SECRET(),
    });
    expect(await sj.jobs.request('healing', 'api')).toMatchObject({ ok: false, code: 'needs-initial-sync' });

    const init = await sj.jobs.request('initial-sync', 'api');
    expect(init.ok).toBe(true);
    await sj.jobs.idle();
    const afterInit = (await sj.jobs.overview()).runs[0]!;
    expect(afterInit).toMatchObject({ kind: 'initial-sync', status: 'success', full: true });
    expect(afterInit.counts).toMatchObject({ items: 400, created: 400, emitted: 400 });
    expect(publisher.events.filter((e) => e.type === 'snapshot.item_created')).toHaveLength(400);

    const m = await ws.mutate({ create: 3, change: 4, delete: 2 });
    publisher.events.length = 0;
    expect((await sj.jobs.request('healing', 'api')).ok).toBe(true);
    await sj.jobs.idle();
    const heal = (await sj.jobs.overview()).runs[0]!;
    expect(heal).toMatchObject({ kind: 'healing', status: 'success' });
    expect(heal.counts).toEqual({
      items: 401,
      created: 3,
      changed: 4,
      deleted: 2,
      unchanged: 394,
      emitted: 9,
    });
    const subj = (t: string) =>
      publisher.events
        .filter((e) => e.type === t)
        .map((e) => e.subject!.slice(6))
        .sort();
    expect(subj('snapshot.item_created')).toEqual(m.created.sort());
    expect(subj('snapshot.item_changed')).toEqual(m.changed.sort());
    expect(subj('snapshot.item_deleted')).toEqual(m.deleted.sort());
    expect((await ws.stats()).unauthorized).toBe(0);
  });

  it('never overlaps runs of one kind; DELETE-style cancel ends a busy run as canceled', async () => {
    const ws = new TestWorkspace();
    await ws.reset(1000);
    await ws.control('delay', { ms: 300 });
    const { sj } = await startJob(ws, { wsPageSize: 100 });
    const first = await sj.jobs.request('initial-sync', 'api');
    expect(first.ok).toBe(true);
    await until('busy', async () => (await sj.jobs.overview()).runs[0]?.status === 'busy');
    expect(await sj.jobs.request('initial-sync', 'api')).toMatchObject({ ok: false, code: 'overlap' });
    expect(await sj.jobs.request('healing', 'api')).toMatchObject({ ok: false, code: 'needs-initial-sync' });
    const canceled = await sj.jobs.cancel('initial-sync');
    expect(canceled).toHaveLength(1);
    const run = (await sj.jobs.overview()).runs[0]!;
    expect(run).toMatchObject({ status: 'canceled', error: 'canceled through the job API' });
    // once it ended, a new run is admitted
    await ws.control('delay', { ms: 0 });
    expect((await sj.jobs.request('initial-sync', 'api')).ok).toBe(true);
    await sj.jobs.idle();
    expect((await sj.jobs.overview()).runs[0]).toMatchObject({ status: 'success' });
  });

  it('GraphQL down: retries, then a failed run with the reason; the next run succeeds', async () => {
    const ws = new TestWorkspace();
    await ws.reset(50);
    const { sj } = await startJob(ws, { wsRetries: 2, wsRetryBaseMs: 20 });
    await ws.fail(503, -1);
    await sj.jobs.request('initial-sync', 'api');
    await sj.jobs.idle();
    let run = (await sj.jobs.overview()).runs[0]!;
    expect(run.status).toBe('failed');
    expect(run.error).toMatch(/HTTP 503.*gave up after 3 attempts/);
    expect((await ws.stats()).failures).toBe(3);

    await ws.fail(-1, -1); // the connection drops: no HTTP answer at all
    await sj.jobs.request('initial-sync', 'api');
    await sj.jobs.idle();
    run = (await sj.jobs.overview()).runs[0]!;
    expect(run.status).toBe('failed');
    expect(run.error).toMatch(/fetch failed|socket|ECONNRESET|other side closed/i);

    await ws.fail(503, 2); // two failures, then the API recovers: retries carry the run through
    await sj.jobs.request('initial-sync', 'api');
    await sj.jobs.idle();
    run = (await sj.jobs.overview()).runs[0]!;
    expect(run).toMatchObject({ status: 'success', counts: expect.objectContaining({ created: 50 }) });
    expect((await sj.jobs.overview()).initialSyncSucceeded).toBe(true);
  });

  it('restart during a run: the killed run is marked failed, healing still waits, a new initial sync heals the store', async () => {
    const ws = new TestWorkspace();
    await ws.reset(600);
    await ws.control('delay', { ms: 250 });
    const config = testConfig(ws, { wsPageSize: 50 });
    // 1. a real start-job process starts an initial sync at start, and is killed with SIGKILL mid-run
    const eventsDir = mkdtempSync(join(tmpdir(), 'tagc-sj-'));
    afterCleanup.push(() => rmSync(eventsDir, { recursive: true, force: true }));
    const child = spawn(
      process.execPath,
      [
        '--no-warnings',
        'src/cli/main.ts',
        'start-job',
        '--sink',
        'file',
        '--file-path',
        join(eventsDir, 'events.ndjson'),
      ],
      {
        env: {
          ...process.env,
          TAG_CONNECTOR_WS: config.ws,
          TAG_CONNECTOR_MONGO_ADDR: config.mongoAddr,
          TAG_CONNECTOR_SERVER_PORT: '0',
          TAG_CONNECTOR_LOG_LEVEL: 'silent',
          TAG_CONNECTOR_WS_PAGE_SIZE: '50',
          TAG_CONNECTOR_JOB_LEASE_MS: '1500',
          START_INITIAL_SYNC: 'true', // the seed's name
        },
        stdio: 'ignore',
      },
    );
    const { SnapshotStore } = await import('../../../src/startjob/store.ts');
    const probe = new SnapshotStore({ url: config.mongoAddr! });
    await probe.open();
    try {
      await until(
        'the child busy',
        async () => (await probe.activeRuns()).some((r) => r.status === 'busy'),
        60_000,
      );
      await until('some pages read', async () => (await ws.stats()).requests >= 3);
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      const left = await probe.activeRuns();
      expect(left).toHaveLength(1);
      expect(left[0]!.trigger).toBe('start');
    } finally {
      await probe.close();
    }
    // 2. the next process finds it failed once the dead instance's lease (1.5 s) expired; healing is still refused
    await ws.control('delay', { ms: 0 });
    const { sj, publisher } = await startJob(ws, { mongoAddr: config.mongoAddr });
    await until('the interrupted run', async () => {
      await sj.jobs.recoverInterrupted();
      return (await sj.jobs.overview()).runs[0]?.status === 'failed';
    });
    const runs = (await sj.jobs.overview()).runs;
    expect(runs[0]).toMatchObject({
      kind: 'initial-sync',
      status: 'failed',
      error: expect.stringMatching(/^interrupted/),
    });
    expect(await sj.jobs.request('healing', 'api')).toMatchObject({ ok: false, code: 'needs-initial-sync' });
    // 3. a new initial sync completes and the store holds exactly the workspace
    await ws.mutate({ create: 5, delete: 5, change: 5 });
    await sj.jobs.request('initial-sync', 'api');
    await sj.jobs.idle();
    expect((await sj.jobs.overview()).runs[0]).toMatchObject({ status: 'success' });
    expect(await sj.store.count()).toBe(600);
    expect(publisher.events.filter((e) => e.type.startsWith('snapshot.item'))).toHaveLength(600);
    expect(
      (await sj.store.db.listCollections().toArray()).map((c) => c.name).filter((n) => n.includes('staging')),
    ).toEqual([]);
  }, 120_000);

  it('cron: healing runs on its pattern once the initial sync (at start) succeeded; dump writes gzipped NDJSON', async () => {
    const ws = new TestWorkspace();
    await ws.reset(120);
    const dumpDir = mkdtempSync(join(tmpdir(), 'tagc-dump-'));
    try {
      const { sj, publisher } = await startJob(ws, {
        startInitialSync: true,
        cronPatternHealingJob: '*/2 * * * * *',
        enableDumpFileCreation: true,
        dumpDir,
      });
      await until('a cron healing run', async () =>
        (await sj.jobs.overview()).runs.find(
          (r) => r.kind === 'healing' && r.trigger === 'cron' && r.status === 'success',
        ),
      );
      const o = await sj.jobs.overview();
      const init = o.runs.find((r) => r.kind === 'initial-sync')!;
      const heal = o.runs.find((r) => r.kind === 'healing')!;
      expect(init).toMatchObject({ trigger: 'start', status: 'success' });
      expect(heal.startedAt!.getTime()).toBeGreaterThan(init.finishedAt!.getTime());
      expect(o.kinds.healing.next).toBeInstanceOf(Date);

      expect((await sj.jobs.request('dump', 'api')).ok).toBe(true);
      await until('the dump', async () =>
        (await sj.jobs.overview()).runs.find((r) => r.kind === 'dump' && r.status === 'success'),
      );
      const files = readdirSync(dumpDir);
      expect(files).toHaveLength(1);
      expect(files[0]).toMatch(/^workspace-dump-dump-.*\.ndjson\.gz$/);
      const lines = gunzipSync(readFileSync(join(dumpDir, files[0]!)))
        .toString()
        .trim()
        .split('\n');
      expect(lines).toHaveLength(120);
      expect(JSON.parse(lines[0]!)).toMatchObject({ id: 'item-000001', item: { id: 'item-000001' } });
      const announced = publisher.events.find((e) => e.type === 'snapshot.dump_created')!;
      expect(announced.data).toMatchObject({
        items: 120,
        path: join(dumpDir, files[0]!),
        format: 'ndjson+gzip',
      });
    } finally {
      rmSync(dumpDir, { recursive: true, force: true });
    }
  });
  it('two instances on one store: a run of one blocks the same kind (and the other store writer) on the other; DELETE reaches across', async () => {
    const ws = new TestWorkspace();
    await ws.reset(600);
    await ws.control('delay', { ms: 500 });
    const a = await startJob(ws, { wsPageSize: 50, jobLeaseMs: 1500 });
    const shared = await startJob(ws, {
      wsPageSize: 50,
      jobLeaseMs: 1500,
      mongoAddr: mongoAddrOf(a.sj),
      healMustWaitForInitialSync: false,
    });
    expect((await a.sj.jobs.request('initial-sync', 'api')).ok).toBe(true);
    await until('busy', async () => (await a.sj.jobs.overview()).runs[0]?.status === 'busy');
    expect(await shared.sj.jobs.request('initial-sync', 'api')).toMatchObject({ ok: false, code: 'overlap' });
    expect(await shared.sj.jobs.request('healing', 'api')).toMatchObject({ ok: false, code: 'store-busy' });
    // still refused after several lease renewals (the run is alive)
    await new Promise((r) => setTimeout(r, 2000));
    expect(await shared.sj.jobs.request('initial-sync', 'api')).toMatchObject({ ok: false, code: 'overlap' });
    // a cancel through the other instance reaches the owner at its next heartbeat
    const canceled = await shared.sj.jobs.cancel('initial-sync');
    expect(canceled).toHaveLength(1);
    await a.sj.jobs.idle();
    expect((await a.sj.jobs.overview()).runs[0]).toMatchObject({
      status: 'canceled',
      error: expect.stringMatching(/another instance/),
    });
    // now the other instance may run it
    await ws.control('delay', { ms: 0 });
    expect((await shared.sj.jobs.request('initial-sync', 'api')).ok).toBe(true);
    await shared.sj.jobs.idle();
    expect((await shared.sj.jobs.overview()).runs[0]).toMatchObject({ status: 'success' });
  });

  it('publishes through the configured sinks (file sink: NDJSON CloudEvents, fsynced)', async () => {
    const ws = new TestWorkspace();
    await ws.reset(30);
    const dir = mkdtempSync(join(tmpdir(), 'tagc-sjfile-'));
    const filePath = join(dir, 'events.ndjson');
    const sj = await buildStartJob(testConfig(ws, { sink: 'file', filePath }), { logger });
    open.push(sj);
    await sj.start();
    try {
      await sj.jobs.request('initial-sync', 'api');
      await sj.jobs.idle();
      const lines = readFileSync(filePath, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(lines).toHaveLength(32);
      expect(lines[0]).toMatchObject({ specversion: '1.0', type: 'snapshot.started' });
      expect(lines.at(-1)).toMatchObject({ type: 'snapshot.completed', data: { counts: { created: 30 } } });
      expect(new Set(lines.map((e) => e.id)).size).toBe(32);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

function mongoAddrOf(sj: StartJob): string {
  const u = new URL(env('MONGO_URL'));
  u.pathname = `/${sj.store.db.databaseName}`;
  return u.toString();
}
