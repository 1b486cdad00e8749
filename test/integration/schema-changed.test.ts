import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, waitStreaming, type Daemon } from '../support/daemon.ts';
import { sql, testDatabase } from '../support/db.ts';
import { readEvents, waitForEvents } from '../support/recvlogical.ts';
import { parseLsn } from '../../src/util/lsn.ts';

type Event = Record<string, unknown> & { id: string; type: string; data: Record<string, unknown> };

/** The events of public.sc_items in a file sink's file, in order. */
function itemEvents(file: string): Event[] {
  return (readEvents(file).events as Event[]).filter(
    (e) => typeof e.subject === 'string' && e.subject.startsWith('public.sc_items'),
  );
}

async function waitFor(what: string, d: Daemon, ok: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (d.proc.exitCode !== null)
      throw new Error(`daemon exited while waiting for ${what}: ${d.stderr().slice(-3000)}`);
    if (Date.now() > deadline)
      throw new Error(`no ${what} after ${timeoutMs} ms: ${d.stderr().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Drops a slot once its walsender (of a killed daemon) has let go of it. */
async function dropSlot(url: string, slot: string): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      await sql(url, `SELECT pg_drop_replication_slot($1)`, [slot]);
      return;
    } catch (err) {
      if (i > 100 || !/is active/.test((err as Error).message)) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/**
 * ALTER TABLE ADD/DROP COLUMN and a retype mid-stream (docs/governance.md "Schema changes"): one
 * schema.changed per change of columns, just before the first change that shows them, and the same
 * events at the same ids when a SIGKILLed daemon replays across the ALTERs, whether the file sink's
 * checkpoint dedupes the replay or a rewound slot makes it write everything again.
 */
describe.each(['wal2json', 'pgoutput'])('schema.changed with --plugin %s', (plugin) => {
  let db: { url: string; drop: () => Promise<void> };
  const dir = mkdtempSync(join(tmpdir(), 'tagc-schema-'));
  const slot = 'sc_slot';
  const args = (file: string) => [
    'extract-tasks',
    '--plugin',
    plugin,
    '--pg-url',
    db.url,
    '--slot',
    slot,
    '--sink',
    'file',
    '--file-path',
    file,
    '--serverPort',
    '0',
    // the slot is confirmed at start only: a SIGKILL replays from before the first ALTER
    '--status-interval-ms',
    '600000',
  ];
  beforeAll(async () => {
    db = await testDatabase(`schema_${plugin}`);
    await sql(db.url, `CREATE TABLE sc_items (id int PRIMARY KEY, note text, body text)`);
  });
  afterAll(async () => {
    await db.drop();
  });

  it('emits one event per ALTER at the same id across a SIGKILL, and again on a full replay', async () => {
    const file1 = join(dir, 'events-1.ndjson');
    let d = runCli(args(file1));
    await waitStreaming(d);
    // A copy of the slot where it starts: put back later, it makes a daemon replay everything.
    await sql(db.url, `SELECT pg_copy_logical_replication_slot($1, 'sc_rewind')`, [slot]);

    // an incompressible TOAST value: wal2json leaves it out of an update that does not touch it
    const big = randomBytes(12_000).toString('base64');
    await sql(db.url, `INSERT INTO sc_items VALUES (1, 'a', $1), (2, 'b', null), (3, 'c', null)`, [big]);
    await sql(db.url, `UPDATE sc_items SET note = 'a2' WHERE id = 1`); // body unchanged: no event
    await sql(
      db.url,
      `BEGIN;
       INSERT INTO sc_items VALUES (4, 'd', null);
       ALTER TABLE sc_items ADD COLUMN qty int;
       INSERT INTO sc_items VALUES (5, 'e', null, 5);
       UPDATE sc_items SET qty = 1 WHERE id = 1;
       COMMIT`,
    );
    await waitFor('the first schema.changed', d, () =>
      itemEvents(file1).some((e) => e.type === 'schema.changed'),
    );
    const alterCommit = itemEvents(file1).find((e) => e.type === 'schema.changed')!.commitlsn as string;
    await d.kill('SIGKILL');
    d = runCli(args(file1));
    await waitStreaming(d);
    // the restart replays from before the ALTER (the file's own checkpoint dedupes what it holds)
    const confirmed = /"confirmed":"([0-9A-F]+\/[0-9A-F]+)"[^\n]*"msg":"streaming"/.exec(d.stderr())?.[1];
    expect(parseLsn(confirmed!)).toBeLessThan(parseLsn(alterCommit));
    await sql(db.url, `INSERT INTO sc_items VALUES (6, 'f', null, 6), (7, 'g', null, 7)`);
    await sql(db.url, `ALTER TABLE sc_items DROP COLUMN note`);
    await sql(
      db.url,
      `BEGIN;
       INSERT INTO sc_items VALUES (8, null, 8);
       UPDATE sc_items SET qty = 2 WHERE id = 2;
       DELETE FROM sc_items WHERE id = 3;
       COMMIT`,
    );
    await sql(db.url, `ALTER TABLE sc_items ALTER COLUMN qty TYPE bigint`);
    await sql(db.url, `INSERT INTO sc_items VALUES (9, null, 9)`);

    // 3 + 1 + 3 (+1 schema) + 2 + 3 (+1 schema) + 1 (+1 schema) row events
    const total = 13 + 3;
    await waitFor('every event', d, () => itemEvents(file1).length >= total);
    const first = itemEvents(file1);
    const ids = first.map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length); // nothing doubled
    expect(first.length).toBe(total);
    const schemaEvents = first.filter((e) => e.type === 'schema.changed');
    expect(schemaEvents.map((e) => e.data.changed)).toEqual([['qty'], ['note'], ['qty']]);
    const cols = (e: Event, which: 'before' | 'after') =>
      (e.data.columns as Record<string, { name: string; type: string }[]>)[which]!.map(
        (c) => `${c.name} ${c.type}`,
      );
    expect(cols(schemaEvents[0]!, 'before')).toEqual(['id integer', 'note text', 'body text']);
    expect(cols(schemaEvents[0]!, 'after')).toEqual(['id integer', 'note text', 'body text', 'qty integer']);
    expect(cols(schemaEvents[1]!, 'after')).toEqual(['id integer', 'body text', 'qty integer']);
    expect(cols(schemaEvents[2]!, 'after')).toEqual(['id integer', 'body text', 'qty bigint']);
    for (const e of schemaEvents) {
      expect(e).toMatchObject({ subject: 'public.sc_items', partitionkey: 'public.sc_items' });
      expect(e.data).toMatchObject({
        op: 's',
        schema: 'public',
        table: 'sc_items',
        before: null,
        after: null,
      });
    }
    // updates are completed from the columns the WAL showed then, not from the catalog now: id 1's
    // TOAST value is marked unchanged, the dropped note never is
    const updates = first.filter((e) => e.data.op === 'u');
    expect(updates.map((e) => e.data.unchanged_toast ?? null)).toEqual([['body'], ['body'], null]);
    // each just before the change that first showed the new columns, within its transaction
    const order = first.map(
      (e) => `${e.type === 'schema.changed' ? 'S' : ((e.data.after as { id?: number })?.id ?? 'd')}`,
    );
    expect(order).toEqual(['1', '2', '3', '1', '4', 'S', '5', '1', '6', '7', 'S', '8', '2', 'd', 'S', '9']);
    const seqOf = (e: Event) => Number(e.id.split('/').at(-1));
    const alter = first.indexOf(schemaEvents[0]!);
    expect([seqOf(first[alter - 1]!), seqOf(schemaEvents[0]!), seqOf(first[alter + 1]!)]).toEqual([0, 1, 2]);

    // Full replay: the slot put back where it started, a fresh file (no checkpoint to dedupe by). Every
    // event comes again, the schema.changed ones at the same ids, nothing shifted.
    await d.kill('SIGKILL');
    await dropSlot(db.url, slot);
    await sql(db.url, `SELECT pg_copy_logical_replication_slot('sc_rewind', $1)`, [slot]);
    const file2 = join(dir, 'events-2.ndjson');
    d = runCli(args(file2));
    await waitStreaming(d);
    await waitForEvents(file2, total);
    await waitFor('the replayed events', d, () => itemEvents(file2).length >= total);
    const exit = await d.kill('SIGTERM');
    if (exit.code !== 0) console.log(d.stderr().slice(-3000));
    expect(exit.code).toBe(0);
    expect(itemEvents(file2)).toEqual(first);
    await sql(db.url, `SELECT pg_drop_replication_slot('sc_rewind')`);
  }, 180_000);
});
