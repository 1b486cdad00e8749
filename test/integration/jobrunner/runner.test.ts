import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { JobRunner, type DetachedRun } from '../../../src/jobrunner/index.ts';
import { createLogger } from '../../../src/log.ts';
import { testDatabase } from '../../support/db.ts';

const W = (name: string) => fileURLToPath(new URL(`./workers/${name}.ts`, import.meta.url));
const CLI = fileURLToPath(new URL('../../../src/cli/main.ts', import.meta.url));
const S = 'jr_state';
const BOSS = 'jr_boss';
const fast = { retryDelay: 0, retryBackoff: false };

async function waitUntil<T>(
  fn: () => Promise<T | undefined | false>,
  ms = 20000,
  what = 'condition',
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function cli(args: string[], url: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args, '--pg-url', url, '--state-schema', S, '--pgboss-schema', BOSS, '--log-level', 'warn'],
      { env: { ...process.env, TAG_CONNECTOR_LOG_LEVEL: '' } },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('JobRunner', () => {
  let db: { url: string; drop: () => Promise<void> };
  let runner: JobRunner;
  const detached: { run: DetachedRun; id: number }[] = [];

  beforeAll(async () => {
    db = await testDatabase('jrrun');
    runner = new JobRunner({
      pg: { connectionString: db.url },
      stateSchema: S,
      pgbossSchema: BOSS,
      log: createLogger(process.env.JR_LOG ?? 'warn', { pretty: false }),
      adoptIntervalMs: 1000,
      adoptGraceSeconds: 2,
      shutdownTimeoutMs: 3000,
      pollingIntervalSeconds: 0.5,
      onDetached: (run, id) => detached.push({ run, id }),
      queues: [
        { name: 'sync', worker: W('sync'), ...fast },
        { name: 'self-final', worker: W('self-final'), ...fast },
        { name: 'returns-event', worker: W('returns-event'), ...fast },
        { name: 'flaky', worker: W('flaky'), retryLimit: 3, ...fast },
        { name: 'doomed', worker: W('always-fails'), retryLimit: 1, deadLetter: true, ...fast },
        { name: 'parent', worker: W('parent'), retryLimit: 3, ...fast },
        { name: 'child', worker: W('child'), concurrency: 3, ...fast },
        { name: 'detached', worker: W('sync'), detached: true, ...fast },
        { name: 'slow', worker: W('slow'), ...fast },
      ],
    });
    await runner.start();
    await runner.start(); // idempotent
  });
  afterAll(async () => {
    await runner.stop();
    await runner.stop(); // idempotent
    await db.drop();
  });

  const done = (id: number) =>
    waitUntil(
      async () => (await runner.store.context(id))?.etl_status === 'DONE',
      30000,
      `context ${id} DONE`,
    );
  const types = async (id: number) => (await runner.store.events(id)).map((e) => e.type);

  it('pg-boss queues carry the per-queue policies (retries, backoff, expiry, dead letter)', async () => {
    const q = await runner.boss.getQueue('doomed');
    expect(q).toMatchObject({
      retryLimit: 1,
      retryDelay: 0,
      deadLetter: 'doomed.dead',
      expireInSeconds: 900,
    });
    expect(await runner.boss.getQueue('doomed.dead')).not.toBeNull();
    const { rows } = await runner.pool.query(`SELECT 1 FROM pg_namespace WHERE nspname = $1`, [BOSS]);
    expect(rows).toHaveLength(1);
  });

  it('a sync worker returns its payload; it sees its context through AsyncLocalStorage', async () => {
    const { context } = await runner.createTask('sync', { n: 21 });
    await done(context.etl_context_id);
    const state = await runner.store.state(context.etl_context_id);
    expect(state.final).toMatchObject({
      type: 'sync:FINAL',
      payload: { doubled: 42, etlContextId: context.etl_context_id, pid: process.pid },
    });
    expect(await types(context.etl_context_id)).toEqual(['sync:INITIAL', 'sync:FINAL']);
  });

  it('a worker may dispatch its :FINAL itself (from library calls) or return the whole event', async () => {
    const a = await runner.createTask('self-final', { tag: 'x' });
    const b = await runner.createTask('returns-event', null);
    await done(a.context.etl_context_id);
    await done(b.context.etl_context_id);
    expect(await types(a.context.etl_context_id)).toEqual([
      'self-final:INITIAL',
      'self-final:PROGRESS',
      'self-final:PROGRESS',
      'self-final:FINAL',
    ]);
    const eb = await runner.store.events(b.context.etl_context_id);
    expect(eb[1]).toMatchObject({
      type: 'returns-event:FINAL',
      payload: { returned: true },
      meta: { by: 'worker' },
    });
  });

  it('a failing task is retried by pg-boss and resumes from its events', async () => {
    const { context } = await runner.createTask('flaky', { failTimes: 2 });
    await done(context.etl_context_id);
    const events = await runner.store.events(context.etl_context_id);
    expect(events.map((e) => e.type)).toEqual([
      'flaky:INITIAL',
      'flaky:STEP',
      'flaky:ERROR',
      'flaky:STEP',
      'flaky:ERROR',
      'flaky:STEP',
      'flaky:FINAL',
    ]);
    expect(events.filter((e) => e.error).map((e) => typeof (e.meta as { attempt: number }).attempt)).toEqual([
      'number',
      'number',
    ]);
    expect(events.at(-1)!.payload).toEqual({ steps: 3, errors: 2 });
  });

  it('retries run out: the job goes to the dead-letter queue, the context stays ERROR, no sweep revives it', async () => {
    const { context } = await runner.createTask('doomed', {});
    const id = context.etl_context_id;
    const dead = await waitUntil(
      async () => (await runner.boss.findJobs('doomed.dead', { data: { etlContextId: id } }))[0],
      20000,
      'dead letter',
    );
    expect(dead.data).toEqual({ etlContextId: id });
    expect((await runner.store.context(id))!.etl_status).toBe('ERROR');
    expect((await runner.store.events(id)).filter((e) => e.error)).toHaveLength(2); // retryLimit 1: 2 attempts
    await runner.adoptOrphans();
    await new Promise((r) => setTimeout(r, 1500));
    expect((await runner.store.events(id)).filter((e) => e.error)).toHaveLength(2);
  });

  it('subtasks: child contexts under the parent, not duplicated by a retried parent, awaited', async () => {
    const { context } = await runner.createTask('parent', { n: 4, childQueue: 'child' });
    const id = context.etl_context_id;
    await done(id);
    const children = await runner.store.children(id);
    expect(children).toHaveLength(4);
    expect(children.map((c) => c.idempotency_key)).toEqual(['#0', '#1', '#2', '#3']);
    for (const c of children) {
      expect(c.etl_status).toBe('DONE');
      expect(await types(c.etl_context_id)).toEqual(['child:INITIAL', 'child:FINAL']);
    }
    const state = await runner.store.state(id);
    expect(state.errors).toBe(1);
    // second attempt found all four children already there
    expect(state.final!.payload).toEqual({ sum: 60, created: 0, parent: id });
    const finals = await Promise.all(children.map((c) => runner.store.state(c.etl_context_id)));
    expect(finals.every((s) => (s.final!.payload as { parent: number }).parent === id)).toBe(true);
  });

  it('a detached task runs in its own process (run-task) and ends DONE', async () => {
    const { context } = await runner.createTask('detached', { n: 1 });
    await done(context.etl_context_id);
    const d = detached.find((x) => x.id === context.etl_context_id)!;
    expect(d).toBeDefined();
    const final = (await runner.store.state(context.etl_context_id)).final!.payload as { pid: number };
    expect(final.pid).toBe(d.run.pid);
    expect(final.pid).not.toBe(process.pid);
    // a task's meta can ask for a detached run on any queue
    const b = await runner.createTask('sync', { n: 2 }, { detached: true });
    await done(b.context.etl_context_id);
    expect(detached.some((x) => x.id === b.context.etl_context_id)).toBe(true);
  });

  it('an orphan (unfinished, unlocked, no job will run it) is adopted', async () => {
    // a context created without its job, as a dead process might leave it
    const { context } = await runner.store.createTask({
      queue: 'sync',
      payload: { n: 5 },
      worker: W('sync'),
    });
    await done(context.etl_context_id);
    expect((await runner.store.state(context.etl_context_id)).final!.payload).toMatchObject({ doubled: 10 });
  });

  it('a scheduled or plainly sent job gets a context of its own, once per job', async () => {
    const jobId = await runner.boss.send('sync', { n: 7 });
    const ctx = await waitUntil(
      async () =>
        (await runner.store.list({ queue: 'sync' })).find((c) => c.idempotency_key === `job:${jobId}`),
      10000,
      'context of a plain job',
    );
    await done(ctx.etl_context_id);
    expect((await runner.store.state(ctx.etl_context_id)).initial!.payload).toEqual({ n: 7 });
  });

  describe('tag-connector run-task --etl-context-id N', () => {
    it('exit 0 done (and 0 again: already done), 5 not found', async () => {
      const { context } = await runner.store.createTask({
        queue: 'cli',
        payload: { n: 3 },
        worker: W('sync'),
      });
      const r1 = await cli(['run-task', '--etl-context-id', String(context.etl_context_id)], db.url);
      expect(r1.code).toBe(0);
      expect((await runner.store.state(context.etl_context_id)).final!.payload).toMatchObject({ doubled: 6 });
      const r2 = await cli(['run-task', '--etl-context-id', String(context.etl_context_id)], db.url);
      expect(r2.code).toBe(0);
      expect(await types(context.etl_context_id)).toEqual(['cli:INITIAL', 'cli:FINAL']);
      expect((await cli(['run-task', '--etl-context-id', '987654'], db.url)).code).toBe(5);
    });

    it('exit 3 failed (an error event is stored), then resumes from the store', async () => {
      const { context } = await runner.store.createTask({
        queue: 'cli-flaky',
        payload: { failTimes: 1 },
        worker: W('flaky'),
      });
      const id = String(context.etl_context_id);
      expect((await cli(['run-task', '--etl-context-id', id], db.url)).code).toBe(3);
      expect((await runner.store.context(context.etl_context_id))!.etl_status).toBe('ERROR');
      expect((await cli(['run-task', '--etl-context-id', id], db.url)).code).toBe(0);
      expect(await types(context.etl_context_id)).toEqual([
        'cli-flaky:INITIAL',
        'cli-flaky:STEP',
        'cli-flaky:ERROR',
        'cli-flaky:STEP',
        'cli-flaky:FINAL',
      ]);
    });

    it('exit 4 when another session holds the :INITIAL row lock', async () => {
      const { context } = await runner.store.createTask({
        queue: 'cli-locked',
        payload: { n: 1 },
        worker: W('sync'),
      });
      const holder = new pg.Client({ connectionString: db.url });
      await holder.connect();
      try {
        await holder.query('BEGIN');
        await holder.query(`SELECT 1 FROM ${S}.event_store WHERE event_id = $1 FOR UPDATE`, [
          context.initial_event_id,
        ]);
        expect(
          (await cli(['run-task', '--etl-context-id', String(context.etl_context_id)], db.url)).code,
        ).toBe(4);
        // the sweep sees it as held, too
        expect((await runner.store.unlockedUnfinished(['cli-locked'])).length).toBe(0);
      } finally {
        await holder.query('ROLLBACK');
        await holder.end();
      }
      expect((await runner.store.unlockedUnfinished(['cli-locked'])).length).toBe(1);
      expect((await cli(['run-task', '--etl-context-id', String(context.etl_context_id)], db.url)).code).toBe(
        0,
      );
    });

    it('tasks list|show|events print the contexts, subtasks and events', async () => {
      const parent = (await runner.store.list({ queue: 'parent' }))[0]!;
      const show = await cli(['tasks', 'show', String(parent.etl_context_id), '--json'], db.url);
      expect(show.code).toBe(0);
      const shown = JSON.parse(show.stdout);
      expect(shown.context.etl_status).toBe('DONE');
      expect(shown.subtasks).toHaveLength(4);
      expect(shown.state.status).toBe('DONE');
      const events = await cli(['tasks', 'events', String(parent.etl_context_id)], db.url);
      expect(events.stdout).toMatch(/parent:INITIAL[\s\S]*parent:ERROR[\s\S]*parent:FINAL/);
      const list = await cli(['tasks', 'list', '--queue', 'child'], db.url);
      expect(list.stdout.trim().split('\n')).toHaveLength(5);
      expect((await cli(['tasks', 'show', '987654'], db.url)).code).toBe(5);
    });
  });
});
