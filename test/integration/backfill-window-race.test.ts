import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { apiUrl, backfillState, fold, tableRows, waitUntil } from '../support/backfill.ts';
import { runCli, waitStreaming, type Daemon } from '../support/daemon.ts';
import { sql, testDatabase } from '../support/db.ts';
import { readEvents } from '../support/recvlogical.ts';

const GATE = 4242;

/**
 * The race the watermark method exists for, made to happen every time: the chunk holding key 50 is
 * held in the middle of its read (its `where` predicate waits on an advisory lock the test holds, so
 * the read's snapshot is already taken), the test changes keys of that chunk and commits, then lets
 * the read finish. Those changes commit between the low and the high watermark, after the read's
 * snapshot: exactly their keys must be dropped from the chunk, every other key read.
 */
describe.each(['wal2json', 'pgoutput'])('backfill window race --plugin %s', (plugin) => {
  let db: { url: string; drop: () => Promise<void> };
  const file = join(mkdtempSync(join(tmpdir(), 'tagc-bf-race-')), 'events.ndjson');
  let d: Daemon | undefined;

  beforeAll(async () => {
    db = await testDatabase(`backfill_race_${plugin}`);
    await sql(db.url, `CREATE TABLE public.race (id int PRIMARY KEY, v int NOT NULL)`);
    await sql(db.url, `INSERT INTO public.race SELECT g, g FROM generate_series(1, 100) g`);
    await sql(
      db.url,
      `CREATE FUNCTION public.race_gate(id int) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
       BEGIN
         IF id = 50 THEN
           PERFORM pg_advisory_lock_shared(${GATE});
           PERFORM pg_advisory_unlock_shared(${GATE});
         END IF;
         RETURN true;
       END $$`,
    );
  });
  afterAll(async () => {
    await d?.kill('SIGKILL');
    await db.drop();
  });

  it('drops exactly the keys changed while the chunk was read, and the fold equals the table', async () => {
    d = runCli([
      'extract-tasks',
      '--plugin',
      plugin,
      '--pg-url',
      db.url,
      '--slot',
      'race_slot',
      '--sink',
      'file',
      '--file-path',
      file,
      '--serverPort',
      '0',
      '--stream-retention-bytes',
      '0',
      '--preset',
      'none',
      '--tables',
      'public.race',
    ]);
    await waitStreaming(d);
    const api = await apiUrl(d);
    const gate = new pg.Client({ connectionString: db.url });
    await gate.connect();
    await gate.query(`SELECT pg_advisory_lock(${GATE})`);
    let id = '';
    try {
      const res = await fetch(`${api}/v1/api/backfills`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ tables: ['public.race'], chunkSize: 20, where: 'public.race_gate(id)' }),
      });
      expect(res.status).toBe(202);
      id = ((await res.json()) as { id: string }).id;
      await waitUntil('the read of the chunk 41..60 held at key 50', async () => {
        const [r] = await sql<{ n: number }>(
          db.url,
          `SELECT count(*)::int AS n FROM pg_stat_activity
            WHERE datname = current_database() AND wait_event = 'advisory'`,
        );
        return r!.n > 0;
      });
      // Between the low watermark and the high one, after the read's snapshot; in the chunk: keys
      // read before the hold (45), after it (58, 60), deleted (55), moved away (52 → 1052); outside
      // it: a key read earlier (10), one read later (70), and a new key in a later chunk (99.5 → 150).
      await sql(db.url, `UPDATE public.race SET v = -v WHERE id IN (45, 58, 60, 10, 70)`);
      await sql(db.url, `DELETE FROM public.race WHERE id = 55`);
      await sql(db.url, `UPDATE public.race SET id = 1052 WHERE id = 52`);
      await sql(db.url, `INSERT INTO public.race VALUES (150, 150)`);
    } finally {
      await gate.query(`SELECT pg_advisory_unlock(${GATE})`);
      await gate.end();
    }
    await waitUntil('the backfill done', async () => (await backfillState(db.url, id)).state === 'done');
    const [m] = await sql<{ id: number }>(db.url, `INSERT INTO public.race VALUES (5000, 0) RETURNING id`);
    await waitUntil('the marker event', async () =>
      readEvents(file).events.some((e) => (e.data as { after?: { id: number } }).after?.id === m!.id),
    );

    const { events, duplicates } = readEvents(file);
    expect(duplicates).toEqual([]);
    const readKeys = events
      .filter((e) => (e.data as { op: string }).op === 'r')
      .map((e) => (e.data as { after: { id: number } }).after.id);
    const expected = [
      ...Array.from({ length: 40 }, (_, i) => i + 1),
      ...[41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 53, 54, 56, 57, 59],
      ...Array.from({ length: 40 }, (_, i) => i + 61),
      150,
      1052,
    ];
    expect(readKeys.sort((a, b) => a - b)).toEqual(expected);
    // Reads of the earlier chunk keep the value they read (10 read before its update), later ones the new one.
    const readOf = (k: number) =>
      events.find(
        (e) =>
          (e.data as { op: string; after: { id: number } }).op === 'r' &&
          (e.data as { after: { id: number } }).after.id === k,
      )!.data as { after: { v: number } };
    expect(readOf(10).after.v).toBe(10);
    expect(readOf(70).after.v).toBe(-70);
    expect(fold(events, 'race')).toEqual(await tableRows(db.url, 'public.race'));
  }, 120_000);
});
