import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, waitStreaming } from '../support/daemon.ts';
import { sql, testDatabase } from '../support/db.ts';
import { readEvents } from '../support/recvlogical.ts';

/** Slot lag in bytes, as Postgres sees it. */
async function lag(url: string, slot: string): Promise<number> {
  const [r] = await sql<{ lag: string }>(
    url,
    `SELECT (pg_current_wal_insert_lsn() - confirmed_flush_lsn)::text AS lag FROM pg_replication_slots WHERE slot_name = $1`,
    [slot],
  );
  return Number(r!.lag);
}

describe('an idle slot does not hold WAL, and the stdout sink does not repeat itself', () => {
  let db: { url: string; drop: () => Promise<void> };
  beforeAll(async () => {
    db = await testDatabase('idle');
    await sql(
      db.url,
      `CREATE SCHEMA other; CREATE TABLE other.busy (id serial PRIMARY KEY, v text); CREATE TABLE public.quiet (id int PRIMARY KEY)`,
    );
  });
  afterAll(async () => {
    await db.drop();
  });

  it('confirms past untracked activity (tracked tables idle)', async () => {
    const d = runCli([
      'extract-tasks',
      '--pg-url',
      db.url,
      '--slot',
      'idle_slot',
      '--sink',
      'file',
      '--file-path',
      join(mkdtempSync(join(tmpdir(), 'tagc-idle-')), 'e.ndjson'),
      '--serverPort',
      '0',
      '--status-interval-ms',
      '200',
    ]);
    await waitStreaming(d);
    for (let i = 0; i < 20; i++)
      await sql(db.url, `INSERT INTO other.busy (v) SELECT md5(random()::text) FROM generate_series(1, 500)`);
    const before = await lag(db.url, 'idle_slot');
    const deadline = Date.now() + 15000;
    let now = before;
    while (Date.now() < deadline && (now = await lag(db.url, 'idle_slot')) > 64 * 1024)
      await new Promise((r) => setTimeout(r, 200));
    expect((await d.kill('SIGTERM')).code).toBe(0);
    expect(now).toBeLessThan(64 * 1024);
  }, 60_000);

  it('prints each event once to stdout across a clean restart', async () => {
    const args = [
      'extract-tasks',
      '--pg-url',
      db.url,
      '--slot',
      'stdout_slot',
      '--sink',
      'stdout',
      '--serverPort',
      '0',
    ];
    const d1 = runCli(args);
    await waitStreaming(d1);
    await sql(db.url, `INSERT INTO public.quiet SELECT g FROM generate_series(1, 100) g`);
    const until = async (d: typeof d1, n: number) => {
      const deadline = Date.now() + 20000;
      while (d.stdout().split('\n').filter(Boolean).length < n && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 100));
    };
    await until(d1, 100);
    expect((await d1.kill('SIGTERM')).code).toBe(0);
    await sql(db.url, `INSERT INTO public.quiet SELECT g FROM generate_series(101, 150) g`);
    const d2 = runCli(args);
    await waitStreaming(d2);
    await until(d2, 50);
    await new Promise((r) => setTimeout(r, 500));
    expect((await d2.kill('SIGTERM')).code).toBe(0);
    const ids = [...d1.stdout().split('\n'), ...d2.stdout().split('\n')]
      .filter(Boolean)
      .map((l) => (JSON.parse(l) as { id: string }).id);
    expect(ids).toHaveLength(150);
    expect(new Set(ids).size).toBe(150);
    void readEvents;
  }, 60_000);
});
