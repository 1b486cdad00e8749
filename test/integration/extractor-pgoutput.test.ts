import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { parseEventId, comparePosition } from '../../src/util/lsn.ts';
import { runCli, waitStreaming, type Daemon } from '../support/daemon.ts';
import { sql, testDatabase } from '../support/db.ts';
import { readEvents } from '../support/recvlogical.ts';

type Ev = {
  id: string;
  source: string;
  type: string;
  lsn: string;
  commitlsn: string;
  partitionkey: string;
  data: Record<string, any>;
};

async function eventsUntil(file: string, n: number, daemon: Daemon, timeoutMs = 60000): Promise<Ev[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { events } = readEvents(file);
    if (events.length >= n) return events as unknown as Ev[];
    if (daemon.proc.exitCode !== null)
      throw new Error(`daemon exited ${daemon.proc.exitCode}: ${daemon.stderr().slice(-3000)}`);
    if (Date.now() > deadline)
      throw new Error(
        `only ${events.length}/${n} events after ${timeoutMs} ms: ${daemon.stderr().slice(-3000)}`,
      );
    await new Promise((r) => setTimeout(r, 100));
  }
}

const byPosition = (a: Ev, b: Ev) => comparePosition(parseEventId(a.id), parseEventId(b.id));

/** Runs statements in one transaction. */
async function tx(url: string, statements: string[]): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query('BEGIN');
    for (const s of statements) await c.query(s);
    await c.query('COMMIT');
  } finally {
    await c.end();
  }
}

describe('extract-tasks --plugin pgoutput gives the same events as wal2json (file sink)', () => {
  let db: { url: string; drop: () => Promise<void> };
  const dir = mkdtempSync(join(tmpdir(), 'tagc-pgoutput-'));
  const walFile = join(dir, 'wal2json.ndjson');
  const pgoFile = join(dir, 'pgoutput.ndjson');
  let w: Daemon | undefined;
  let p: Daemon | undefined;
  const common = (slot: string, file: string) => [
    'extract-tasks',
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
  ];

  beforeAll(async () => {
    db = await testDatabase('pgoutput');
    await sql(db.url, `CREATE TYPE mood AS ENUM ('happy', 'sad')`);
    await sql(
      db.url,
      `CREATE TABLE wide (
        id bigint PRIMARY KEY, i2 int2, i4 int4, n numeric(30,10), nn numeric, f4 real, f8 float8, fi float8, b bool,
        t text, vc varchar(20), j json, jb jsonb, ai int[], ai8 int8[], at text[], by bytea, u uuid,
        ts timestamptz, tsn timestamp, d date, iv interval, m mood, ms mood[])`,
    );
    await sql(db.url, `CREATE TABLE toasty (id int PRIMARY KEY, small text, big text)`);
    await sql(db.url, `CREATE TABLE toasty_full (id int PRIMARY KEY, small text, big text)`);
    await sql(db.url, `ALTER TABLE toasty_full REPLICA IDENTITY FULL`);
    await sql(db.url, `CREATE TABLE keyed (id int PRIMARY KEY, v text)`);
    await sql(db.url, `CREATE TABLE aux (id int PRIMARY KEY)`);
    // One after the other: both run the state migrations at start.
    w = runCli([...common('w_slot', walFile), '--plugin', 'wal2json']);
    await waitStreaming(w);
    p = runCli([...common('p_slot', pgoFile), '--plugin', 'pgoutput', '--publication', 'p_pub']);
    await waitStreaming(p);
  });
  afterAll(async () => {
    await w?.kill('SIGKILL');
    await p?.kill('SIGKILL');
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('decodes the same workload into identical events (ids, positions, data)', async () => {
    await sql(
      db.url,
      `INSERT INTO wide VALUES (9223372036854775807, -32768, 2147483647, 12345678901234567890.0123456789, 'NaN',
        1.5, 1.0000000000000002, '-Infinity', true, 'héllo "wörld" ✓ 😀', 'vc', '{"a": 1, "big": 12345678901234567890}',
        '{"b": [1, 2.5, null]}', '{1,2,3}', '{9223372036854775807,-9223372036854775808}', '{"x y",NULL,z}',
        '\\x00ff10', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '2024-02-29 23:59:59.123456+02',
        '2024-02-29 23:59:59.5', '2024-02-29', '1 day 02:03:04', 'happy', '{happy,sad}')`,
    );
    await sql(db.url, `INSERT INTO wide (id) VALUES (1)`);
    // a transactional logical message between two changes takes a seq number on both paths
    await tx(db.url, [
      `UPDATE wide SET t = 'changed' WHERE id = 9223372036854775807`,
      `SELECT pg_logical_emit_message(true, 'tagc', 'between')`,
      `UPDATE wide SET i4 = 1, ai = '{}' WHERE id = 1`,
    ]);
    const big = `string_agg(md5(random()::text), '') FROM generate_series(1, 600)`;
    await sql(db.url, `INSERT INTO toasty SELECT 1, 'a', ${big}`);
    await sql(db.url, `INSERT INTO toasty_full SELECT 1, 'a', ${big}`);
    await sql(db.url, `UPDATE toasty SET small = 'b'`);
    await sql(db.url, `UPDATE toasty_full SET small = 'b'`);
    await sql(db.url, `INSERT INTO keyed VALUES (1, 'one')`);
    await sql(db.url, `UPDATE keyed SET id = 2`);
    await sql(db.url, `DELETE FROM keyed`);
    await sql(db.url, `DELETE FROM wide WHERE id = 1`);
    await tx(db.url, [`INSERT INTO aux VALUES (1)`, `TRUNCATE toasty, aux`]);
    const total = 15;

    const wal = (await eventsUntil(walFile, total, w!)).sort(byPosition);
    const pgo = (await eventsUntil(pgoFile, total, p!)).sort(byPosition);
    // nothing more arrives on either side
    await new Promise((r) => setTimeout(r, 1000));
    expect(readEvents(walFile).events).toHaveLength(total);
    expect(readEvents(pgoFile).events).toHaveLength(total);
    expect(readEvents(pgoFile).duplicates).toEqual([]);

    // Everything but the source (it names the slot) is the same, in the same order.
    expect(pgo.map((e) => e.source)).toEqual(pgo.map(() => expect.stringMatching(/\/p_slot$/)));
    // One known difference: wal2json (2.5, no numeric-data-types-as-string) prints NaN and ±Infinity
    // numbers as JSON null; pgoutput sends Postgres' text, which we keep ('NaN', '-Infinity').
    const SPECIAL = ['nn', 'fi'];
    for (const [i, theirs] of wal.entries())
      for (const side of ['before', 'after'] as const)
        for (const k of SPECIAL) {
          const ours = pgo[i]?.data[side];
          if (theirs.data[side]?.[k] === null && typeof ours?.[k] === 'string')
            theirs.data[side][k] = ours[k];
        }
    const noSource = (e: Ev) => ({ ...e, source: undefined });
    expect(pgo.map(noSource)).toEqual(wal.map(noSource));

    // And what they agree on is right.
    const [
      ins,
      insNull,
      upd,
      upd2,
      toastIns,
      toastFullIns,
      toastUpd,
      toastFullUpd,
      kIns,
      kUpd,
      kDel,
      del,
      auxIns,
      tr1,
      tr2,
    ] = pgo as [Ev, Ev, Ev, Ev, Ev, Ev, Ev, Ev, Ev, Ev, Ev, Ev, Ev, Ev, Ev];
    expect(ins.partitionkey).toBe('9223372036854775807');
    expect(ins.data.after).toEqual({
      id: '9223372036854775807',
      i2: -32768,
      i4: 2147483647,
      n: '12345678901234567890.0123456789',
      nn: 'NaN',
      f4: 1.5,
      f8: 1.0000000000000002,
      fi: '-Infinity',
      b: true,
      t: 'héllo "wörld" ✓ 😀',
      vc: 'vc',
      j: { a: 1, big: JSON.parse('12345678901234567890') as number },
      jb: { b: [1, 2.5, null] },
      ai: [1, 2, 3],
      ai8: ['9223372036854775807', '-9223372036854775808'],
      at: ['x y', null, 'z'],
      by: Buffer.from([0, 255, 16]).toString('base64'),
      u: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
      ts: '2024-02-29T21:59:59.123456+00:00',
      tsn: '2024-02-29T23:59:59.5',
      d: '2024-02-29',
      iv: '1 day 02:03:04',
      m: 'happy',
      ms: ['happy', 'sad'],
    });
    expect(Object.values(insNull.data.after).filter((v) => v !== null)).toEqual(['1']);
    // same transaction; seq 1 is the logical message
    expect(upd.id.replace(/\/0$/, '/2')).toBe(upd2.id);
    expect(upd.data.before).toEqual({ id: '9223372036854775807' });
    expect(upd2.data.after).toMatchObject({ i4: 1, ai: [] });
    expect(toastIns.data.after.big).toHaveLength(600 * 32);
    expect(toastUpd.data.after).toEqual({ id: 1, small: 'b' });
    expect(toastUpd.data.unchanged_toast).toEqual(['big']);
    expect(toastFullUpd.data.unchanged_toast).toBeUndefined();
    expect(toastFullUpd.data.after.big).toBe(toastFullIns.data.after.big);
    expect(toastFullUpd.data.before.big).toBe(toastFullIns.data.after.big);
    expect(toastFullUpd.data.changed).toEqual(['small']);
    expect(kIns.data.after).toEqual({ id: 1, v: 'one' });
    expect(kUpd.data).toMatchObject({ op: 'u', before: { id: 1 }, after: { id: 2, v: 'one' } });
    expect(kDel.data).toMatchObject({ op: 'd', before: { id: 2 }, after: null });
    expect(del.data).toMatchObject({ op: 'd', before: { id: '1' } });
    // multi-table TRUNCATE: one event per table, seq after the insert of the same transaction
    const commit = auxIns.id.replace(/\/0$/, '');
    expect([tr1.id, tr2.id]).toEqual([`${commit}/1`, `${commit}/2`]);
    expect([tr1.data, tr2.data]).toEqual([
      { op: 't', schema: 'public', table: 'toasty', before: null, after: null },
      { op: 't', schema: 'public', table: 'aux', before: null, after: null },
    ]);
  }, 120_000);

  it('both exit 0 on SIGTERM', async () => {
    const [a, b] = await Promise.all([w!.kill('SIGTERM'), p!.kill('SIGTERM')]);
    if (b.code !== 0) console.log(p!.stderr().slice(-3000));
    expect(a.code).toBe(0);
    expect(b.code).toBe(0);
  });
});
