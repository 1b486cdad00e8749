import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { EventStore, jobrunnerMigrations } from '../../../src/jobrunner/index.ts';
import { migrate } from '../../../src/state/migrate.ts';
import { testDatabase } from '../../support/db.ts';

/** The rules of a context's life, enforced by the database itself (migration 1's trigger). */
describe('event store rules (in the database)', () => {
  let db: { url: string; drop: () => Promise<void> };
  let pool: pg.Pool;
  let store: EventStore;
  const S = 'jr_state';

  beforeAll(async () => {
    db = await testDatabase('jrstore');
    pool = new pg.Pool({ connectionString: db.url, max: 4 });
    expect(await migrate(pool, S, 'jobrunner', jobrunnerMigrations)).toEqual([1]);
    expect(await migrate(pool, S, 'jobrunner', jobrunnerMigrations)).toEqual([]);
    store = new EventStore(pool, S);
  });
  afterAll(async () => {
    await pool.end();
    await db.drop();
  });

  const bare = async (queue = 'q') =>
    (await pool.query(`INSERT INTO ${S}.etl_context (queue) VALUES ($1) RETURNING etl_context_id`, [queue]))
      .rows[0].etl_context_id as number;
  const ev = (id: number, type: string, error = false) =>
    pool.query(
      `INSERT INTO ${S}.event_store (etl_context_id, type, payload, error) VALUES ($1, $2, '{}', $3)`,
      [id, type, error],
    );

  it('the first event must be <queue>:INITIAL, and only one', async () => {
    const id = await bare('q');
    await expect(ev(id, 'q:STEP')).rejects.toThrow(/first event .* must be q:INITIAL/);
    await expect(ev(id, 'other:INITIAL')).rejects.toThrow(/must be q:INITIAL/);
    await ev(id, 'q:INITIAL');
    await expect(ev(id, 'q:INITIAL')).rejects.toThrow(/already has its :INITIAL/);
  });

  it('initial/latest follow; an error sets ERROR, a later event OPEN, :FINAL DONE; DONE refuses more', async () => {
    const { context } = await store.createTask({ queue: 'q', payload: { x: 1 } });
    const id = context.etl_context_id;
    let row = (await store.context(id))!;
    expect(row).toMatchObject({ etl_status: 'OPEN', initial_event_id: row.latest_event_id });
    const err = await store.append(id, { type: 'q:ERROR', payload: { message: 'x' }, error: true });
    row = (await store.context(id))!;
    expect(row).toMatchObject({ etl_status: 'ERROR', latest_event_id: err.event_id });
    await store.append(id, { type: 'q:STEP', payload: 1 });
    expect((await store.context(id))!.etl_status).toBe('OPEN');
    await expect(store.append(id, { type: 'other:FINAL' })).rejects.toThrow(/must be q:FINAL/);
    await expect(store.append(id, { type: 'q:FINAL', error: true })).rejects.toThrow(/cannot be an error/);
    const fin = await store.append(id, { type: 'q:FINAL', payload: 'ok' });
    row = (await store.context(id))!;
    expect(row).toMatchObject({ etl_status: 'DONE', latest_event_id: fin.event_id });
    expect(row.modified_at.getTime()).toBeGreaterThanOrEqual(row.created_at.getTime());
    await expect(store.append(id, { type: 'q:STEP' })).rejects.toThrow(/is DONE/);
    await expect(store.append(id, { type: 'q:ERROR', error: true })).rejects.toThrow(/is DONE/);
    const state = await store.state(id);
    expect(state).toMatchObject({ status: 'DONE', errors: 1, final: { type: 'q:FINAL', payload: 'ok' } });
  });

  it('events are append-only; an event needs an existing context', async () => {
    const { context } = await store.createTask({ queue: 'q' });
    await expect(
      pool.query(`UPDATE ${S}.event_store SET type = 'x' WHERE etl_context_id = $1`, [
        context.etl_context_id,
      ]),
    ).rejects.toThrow(/append-only/);
    await expect(
      pool.query(`DELETE FROM ${S}.event_store WHERE etl_context_id = $1`, [context.etl_context_id]),
    ).rejects.toThrow(/append-only/);
    await expect(ev(999999, 'q:INITIAL')).rejects.toThrow(/does not exist/);
  });

  it('an idempotency key is unique per parent: the same key finds the same context', async () => {
    const a = await store.createTask({ queue: 'q', idempotencyKey: 'k' });
    const b = await store.createTask({ queue: 'q', idempotencyKey: 'k' });
    expect(a.created).toBe(true);
    expect(b).toMatchObject({ created: false, context: { etl_context_id: a.context.etl_context_id } });
    const c1 = await store.createTask({
      queue: 'c',
      idempotencyKey: 'k',
      parentContextId: a.context.etl_context_id,
    });
    const c2 = await store.createTask({
      queue: 'c',
      idempotencyKey: 'k',
      parentContextId: a.context.etl_context_id,
    });
    expect(c1.created).toBe(true);
    expect(c2.context.etl_context_id).toBe(c1.context.etl_context_id);
    expect((await store.children(a.context.etl_context_id)).map((c) => c.etl_context_id)).toEqual([
      c1.context.etl_context_id,
    ]);
    // only one :INITIAL for the deduplicated context
    expect((await store.events(c1.context.etl_context_id)).map((e) => e.type)).toEqual(['c:INITIAL']);
  });

  it('concurrent writers of one context are serialized: exactly one :FINAL wins', async () => {
    const { context } = await store.createTask({ queue: 'q' });
    const results = await Promise.allSettled(
      Array.from({ length: 6 }, () => store.append(context.etl_context_id, { type: 'q:FINAL' })),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect((await store.events(context.etl_context_id)).filter((e) => e.type === 'q:FINAL')).toHaveLength(1);
  });

  it('both tables have REPLICA IDENTITY FULL (the extractor needs old rows)', async () => {
    const { rows } = await pool.query(
      `SELECT relname, relreplident FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE nspname = $1 AND relname IN ('etl_context', 'event_store') ORDER BY relname`,
      [S],
    );
    expect(rows).toEqual([
      { relname: 'etl_context', relreplident: 'f' },
      { relname: 'event_store', relreplident: 'f' },
    ]);
  });
});
