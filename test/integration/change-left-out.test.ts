/** @services pg */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, waitStreaming, type Daemon } from '../support/daemon.ts';
import { sql, testDatabase } from '../support/db.ts';
import { readEvents } from '../support/recvlogical.ts';

/**
 * wal2json leaves an UPDATE or DELETE of a table without a replica identity out of the stream and
 * says so only in a WARNING notice on the replication connection. The daemon reads those notices:
 * such a change of a tracked table stops it (E_CHANGE_LEFT_OUT, naming the table and the way out),
 * and nothing from that transaction on is confirmed, so a restart meets the same change again.
 */
describe('a change the output plugin leaves out is never skipped silently (wal2json)', () => {
  let db: { url: string; drop: () => Promise<void> };
  const dir = mkdtempSync(join(tmpdir(), 'tagc-leftout-'));
  const file = join(dir, 'events.ndjson');
  let d: Daemon | undefined;
  const args = (tables: string) => [
    'extract-tasks',
    '--pg-url',
    db.url,
    '--slot',
    'leftout',
    '--tables',
    tables,
    '--preset',
    'none',
    '--sink',
    'file',
    '--file-path',
    file,
    '--serverPort',
    '0',
  ];
  const confirmed = async () =>
    (
      await sql<{ lsn: string }>(
        db.url,
        `SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = 'leftout'`,
      )
    )[0]!.lsn;

  beforeAll(async () => {
    db = await testDatabase('leftout');
    await sql(db.url, `CREATE TABLE keyed (id int PRIMARY KEY, v text)`);
    await sql(db.url, `CREATE TABLE nokey (id int, v text)`);
    await sql(db.url, `CREATE TABLE other_nokey (id int, v text)`);
  });
  afterAll(async () => {
    await d?.kill('SIGKILL');
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stops at an UPDATE of a tracked keyless table, naming it; nothing from that transaction is confirmed', async () => {
    d = runCli(args('public.keyed,public.nokey'));
    await waitStreaming(d);
    await sql(db.url, `INSERT INTO keyed VALUES (1, 'a')`);
    await sql(db.url, `INSERT INTO nokey VALUES (1, 'a')`);
    // wal2json filters untracked tables before it looks at the identity: no notice, no stop
    await sql(db.url, `UPDATE other_nokey SET v = 'x'`);
    const deadline = Date.now() + 30_000;
    while (readEvents(file).events.length < 2 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    expect(readEvents(file).events.map((e) => e.type)).toEqual(['row.insert', 'row.insert']);

    await sql(db.url, `BEGIN; INSERT INTO keyed VALUES (2, 'b'); UPDATE nokey SET v = 'b'; COMMIT`);
    const exit = await Promise.race([d.exit, new Promise<null>((r) => setTimeout(() => r(null), 30_000))]);
    expect(exit).not.toBeNull();
    expect(exit!.code).toBe(1);
    const err = d.stderr();
    expect(err).toContain('E_CHANGE_LEFT_OUT');
    expect(err).toContain('public.nokey');
    expect(err).toContain('REPLICA IDENTITY FULL');
    const commit = /in the transaction committed at ([0-9A-F]+\/[0-9A-F]+)/.exec(err)?.[1];
    expect(commit).toBeDefined();
    // the slot is not confirmed up to the transaction that lost a change: it is decoded again
    const rows = await sql<{ before: boolean }>(db.url, `SELECT $1::pg_lsn < $2::pg_lsn AS before`, [
      await confirmed(),
      commit,
    ]);
    expect(rows[0]!.before).toBe(true);
    // (the transaction's keyed insert may already be in the file: the sink skips it when it comes again)
  });

  it('streams on after the table gets a replica identity and the keyless change is left behind by exclusion', async () => {
    // The change already in the WAL stays keyless: a restart meets it again and stops again.
    d = runCli(args('public.keyed,public.nokey'));
    const again = await Promise.race([d.exit, new Promise<null>((r) => setTimeout(() => r(null), 30_000))]);
    expect(again?.code).toBe(1);
    expect(d.stderr()).toContain('E_CHANGE_LEFT_OUT');

    // The way out the error names: leave the table out until the slot is past the change.
    d = runCli(args('public.keyed'));
    await waitStreaming(d);
    const deadline = Date.now() + 30_000;
    while (readEvents(file).events.length < 3 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    const { events, duplicates } = readEvents(file);
    expect(duplicates).toEqual([]);
    expect(events.map((e) => `${e.type} ${(e.data as { table: string }).table}`)).toEqual([
      'row.insert keyed',
      'row.insert nokey',
      'row.insert keyed',
    ]);
  });
});
