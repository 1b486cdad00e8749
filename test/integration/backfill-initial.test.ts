import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { fold, tableRows, waitUntil } from '../support/backfill.ts';
import { runCli } from '../support/daemon.ts';
import { sql, testDatabase } from '../support/db.ts';
import { readEvents } from '../support/recvlogical.ts';

/**
 * `--snapshot-mode initial` is crash-safe: a daemon SIGKILLed after it created the slot and before it
 * queued the initial backfill queues it at its next start. The daemon is held at exactly that point
 * by a lock on the backfills table (its insert waits), then killed.
 */
describe('--snapshot-mode initial, SIGKILL between creating the slot and queueing the backfill', () => {
  let db: { url: string; drop: () => Promise<void> };
  const file = join(mkdtempSync(join(tmpdir(), 'tagc-bf-initial-')), 'events.ndjson');
  const args = (mode: string) => [
    'extract-tasks',
    '--plugin',
    'pgoutput',
    '--pg-url',
    db.url,
    '--slot',
    'bf_init_slot',
    '--sink',
    'file',
    '--file-path',
    file,
    '--serverPort',
    '0',
    '--snapshot-mode',
    mode,
    '--stream-retention-bytes',
    '0',
    '--preset',
    'none',
    '--tables',
    'public.init_items',
  ];

  beforeAll(async () => {
    db = await testDatabase('backfill_initial');
    await sql(db.url, `CREATE TABLE public.init_items (id int PRIMARY KEY, v text)`);
    await sql(db.url, `INSERT INTO public.init_items SELECT g, md5(g::text) FROM generate_series(1, 3000) g`);
    // The state schema, so the test can lock its backfills table before the daemon's first start.
    const status = runCli(['backfill', 'status', '--json', '--pg-url', db.url, '--slot', 'bf_init_slot']);
    expect((await status.exit).code).toBe(0);
  });
  afterAll(async () => {
    await db.drop();
  });

  it('queues the initial backfill at the next start, once, and reads every row', async () => {
    const locker = new pg.Client({ connectionString: db.url });
    await locker.connect();
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE tag_connector.backfills IN EXCLUSIVE MODE');
    const d1 = runCli(args('initial'));
    try {
      // Slot created; the insert of the initial backfill waits for our lock.
      await waitUntil('the daemon waiting to queue the initial backfill', async () => {
        const [r] = await sql<{ n: number }>(
          db.url,
          `SELECT count(*)::int AS n FROM pg_stat_activity
            WHERE datname = current_database() AND wait_event_type = 'Lock'
              AND query LIKE '%.backfills (id, slot, where_sql%'`,
        );
        return r!.n > 0;
      });
      const slots = await sql(db.url, `SELECT 1 FROM pg_replication_slots WHERE slot_name = 'bf_init_slot'`);
      expect(slots).toHaveLength(1);
      await d1.kill('SIGKILL');
      // Its waiting insert dies with it (PostgreSQL would only notice the closed socket when it answers).
      await sql(
        db.url,
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE datname = current_database() AND application_name LIKE 'tag-connector%'`,
      );
    } finally {
      await locker.query('ROLLBACK');
      await locker.end();
    }
    expect(await sql(db.url, `SELECT id FROM tag_connector.backfills`)).toEqual([]);

    // initial_only: queues the owed backfill, reads it, exits 0.
    const d2 = runCli(args('initial_only'));
    const exit = await d2.exit;
    if (exit.code !== 0) console.log(d2.stderr().slice(-3000));
    expect(exit.code).toBe(0);
    const backfills = await sql<{ id: string; origin: string; state: string }>(
      db.url,
      `SELECT id, origin, state FROM tag_connector.backfills`,
    );
    expect(backfills).toEqual([{ id: expect.stringMatching(/^bf_init_/), origin: 'initial', state: 'done' }]);
    expect(fold(readEvents(file).events, 'init_items')).toEqual(await tableRows(db.url, 'public.init_items'));

    // Owed no more: a third start queues nothing.
    const d3 = runCli(args('initial_only'));
    expect((await d3.exit).code).toBe(0);
    expect(await sql(db.url, `SELECT count(*)::int AS n FROM tag_connector.backfills`)).toEqual([{ n: 1 }]);
    await waitUntil('the slot released', async () =>
      (
        await sql<{ active: boolean }>(
          db.url,
          `SELECT active FROM pg_replication_slots WHERE slot_name = 'bf_init_slot'`,
        )
      ).every((r) => !r.active),
    );
    // `slot drop` takes the slot's stored chunks and an owed initial backfill with it.
    await sql(
      db.url,
      `INSERT INTO tag_connector.backfill_chunks (nonce, backfill_id, lsn, columns, types, rows)
       SELECT 'stale', id, '0/1', '[]', '[]', '[]' FROM tag_connector.backfills`,
    );
    await sql(
      db.url,
      `INSERT INTO tag_connector.initial_snapshots (slot, token) VALUES ('bf_init_slot', 'x')`,
    );
    const drop = runCli(['slot', 'drop', '--pg-url', db.url, '--slot', 'bf_init_slot']);
    expect((await drop.exit).code).toBe(0);
    expect(await sql(db.url, `SELECT nonce FROM tag_connector.backfill_chunks`)).toEqual([]);
    expect(await sql(db.url, `SELECT slot FROM tag_connector.initial_snapshots`)).toEqual([]);
  }, 180_000);
});
