import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, waitStreaming, type Daemon } from '../support/daemon.ts';
import { sql, testDatabase } from '../support/db.ts';
import { readEvents } from '../support/recvlogical.ts';

type Ev = { id: string; type: string; partitionkey: string; data: Record<string, any> };

async function eventsUntil(file: string, n: number, timeoutMs = 60000): Promise<Ev[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { events } = readEvents(file);
    if (events.length >= n) return events as unknown as Ev[];
    if (Date.now() > deadline) throw new Error(`only ${events.length}/${n} events after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('extract-tasks: types, operations, TOAST, large transactions (wal2json, file sink)', () => {
  let db: { url: string; drop: () => Promise<void> };
  let d: Daemon;
  const file = join(mkdtempSync(join(tmpdir(), 'tagc-types-')), 'events.ndjson');
  let seen = 0;
  const next = async (n: number) => {
    const evs = await eventsUntil(file, seen + n);
    const out = evs.slice(seen, seen + n);
    seen += n;
    return out;
  };

  beforeAll(async () => {
    db = await testDatabase('types');
    await sql(
      db.url,
      `CREATE TABLE wide (
        id bigint PRIMARY KEY, i2 int2, i4 int4, n numeric(30,10), f4 real, f8 float8, b bool, t text,
        j json, jb jsonb, ai int[], at text[], by bytea, u uuid, ts timestamptz, tsn timestamp, d date, e text)`,
    );
    await sql(db.url, `CREATE TABLE toasty (id int PRIMARY KEY, small text, big text)`);
    await sql(db.url, `CREATE TABLE toasty_full (id int PRIMARY KEY, small text, big text)`);
    await sql(db.url, `ALTER TABLE toasty_full REPLICA IDENTITY FULL`);
    await sql(db.url, `CREATE TABLE bulk (id int PRIMARY KEY, v text)`);
    d = runCli([
      'extract-tasks',
      '--pg-url',
      db.url,
      '--slot',
      'types_slot',
      '--sink',
      'file',
      '--file-path',
      file,
      '--serverPort',
      '0',
    ]);
    await waitStreaming(d);
  });
  afterAll(async () => {
    await d?.kill('SIGKILL');
    await db.drop();
  });

  it('keeps every type exact', async () => {
    await sql(
      db.url,
      `INSERT INTO wide VALUES (9223372036854775807, -32768, 2147483647, 12345678901234567890.0123456789, 1.5, 1.0000000000000002,
        true, 'héllo "wörld" ✓', '{"a": 1}', '{"b": [1, 2.5, null]}', '{1,2,3}', '{"x y",NULL,z}', '\\x00ff10',
        'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '2024-02-29 23:59:59.123456+02', '2024-02-29 23:59:59.5', '2024-02-29', NULL)`,
    );
    const [e] = await next(1);
    expect(e!.type).toBe('row.insert');
    expect(e!.partitionkey).toBe('9223372036854775807');
    expect(e!.data.after).toEqual({
      id: '9223372036854775807',
      i2: -32768,
      i4: 2147483647,
      n: '12345678901234567890.0123456789',
      f4: 1.5,
      f8: 1.0000000000000002,
      b: true,
      t: 'héllo "wörld" ✓',
      j: { a: 1 },
      jb: { b: [1, 2.5, null] },
      ai: [1, 2, 3],
      at: ['x y', null, 'z'],
      by: Buffer.from([0, 255, 16]).toString('base64'),
      u: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
      ts: '2024-02-29T21:59:59.123456+00:00',
      tsn: '2024-02-29T23:59:59.5',
      d: '2024-02-29',
      e: null,
    });
  });

  it('maps update, delete and truncate, with ids <commitLsn>/<seq>', async () => {
    await sql(db.url, `UPDATE wide SET t = 'changed' WHERE id = 9223372036854775807`);
    await sql(db.url, `DELETE FROM wide`);
    await sql(db.url, `TRUNCATE wide`);
    const [u, del, tr] = await next(3);
    expect(u!.type).toBe('row.update');
    expect(u!.data.after.t).toBe('changed');
    expect(u!.data.op).toBe('u');
    expect(del!.type).toBe('row.delete');
    expect(del!.data.before.id).toBe('9223372036854775807');
    expect(tr!.type).toBe('row.truncate');
    for (const e of [u, del, tr]) expect(e!.id).toMatch(/^[0-9A-F]+\/[0-9A-F]+\/0$/);
  });

  it('marks unchanged TOAST without REPLICA IDENTITY FULL and fills it in with FULL', async () => {
    const big = `string_agg(md5(random()::text), '') FROM generate_series(1, 600)`;
    await sql(db.url, `INSERT INTO toasty SELECT 1, 'a', ${big}`);
    await sql(db.url, `INSERT INTO toasty_full SELECT 1, 'a', ${big}`);
    await sql(db.url, `UPDATE toasty SET small = 'b'`);
    await sql(db.url, `UPDATE toasty_full SET small = 'b'`);
    const [, insFull, upd, updFull] = await next(4);
    expect(upd!.data.after).toEqual({ id: 1, small: 'b' });
    expect(upd!.data.unchanged_toast).toEqual(['big']);
    expect(updFull!.data.unchanged_toast).toBeUndefined();
    expect(updFull!.data.after.big).toBe(insFull!.data.after.big);
    expect(updFull!.data.after.big).toHaveLength(600 * 32);
    expect(updFull!.data.changed).toEqual(['small']);
  });

  it('streams a 100k-row transaction through, each row once and in order', async () => {
    await sql(db.url, `INSERT INTO bulk SELECT g, 'v' || g FROM generate_series(1, 100000) g`);
    const evs = await next(100000);
    const commit = evs[0]!.id.split('/').slice(0, 2).join('/');
    evs.forEach((e, i) => {
      expect(e.id).toBe(`${commit}/${i}`);
    });
    expect(evs[99999]!.data.after).toEqual({ id: 100000, v: 'v100000' });
  }, 120_000);

  it('exits 0 on SIGTERM within 10 s', async () => {
    const t0 = Date.now();
    const exit = await d.kill('SIGTERM');
    expect(exit.code).toBe(0);
    expect(Date.now() - t0).toBeLessThan(10_000);
  });
});
