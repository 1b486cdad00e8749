import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { apiUrl, backfillState, waitUntil } from '../support/backfill.ts';
import { runCli, waitStreaming, type Daemon } from '../support/daemon.ts';
import { sql, testDatabase } from '../support/db.ts';

/**
 * A backfill's read of a row carries the very bytes a live insert of the same row carries (after the
 * envelope's own fields: id, positions, time, type and op): the reads are made from the database's
 * text forms by chunk-rows.ts, the inserts by each plugin's decoder. A table of many types and odd
 * values (exponent floats, NaN, numerics beyond 2^53, jsonb with spacing and big numbers, json with
 * duplicate keys and newlines, text with escapes and emoji, padded char(n), inet, arrays with NULLs
 * and quotes, infinite and BC timestamps, a wide TOASTed text, NULLs).
 */
const TABLE = 'public.bf_types';
/** Dropped while its backfill runs. */
const GONE = 'public.bf_gone';

const COLUMNS = `id bigint PRIMARY KEY, i2 smallint, i4 integer, i8 bigint, num numeric(20,5), num_big numeric,
  f4 real, f8 double precision, b boolean, t text, vc varchar(10), ch char(5), by bytea, j json, jb jsonb,
  ia integer[], ta text[], ts timestamp, tstz timestamptz, tstz3 timestamptz(3), d date, tm time,
  iv interval, u uuid, ip inet, net cidr, mood bf_mood, wide text`;

const ROWS = [
  `1, 1, 2, 3, 1.5, 123456789012345678901234567890.123, 1.5, 0.1, true, 'plain', 'v', 'ab', '\\x0001ff',
   '{"a": 1}', '{"a": 1}', '{1,2,3}', '{a,b}', '2026-01-02 03:04:05', '2026-01-02 03:04:05.123456+02',
   '2026-01-02 03:04:05.5+00', '2026-01-02', '03:04:05', '1 day 02:03:04', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
   '10.0.0.1', '10.0.0.0/8', 'happy', 'x'`,
  `2, -32768, -2147483648, -9223372036854775808, -0.00001, 1, 0.25, 12345.678, false,
   E'tab\\there "quoted" back\\\\slash \\x01 ctl\\nnewline é 😀', E'q\\"', 'abcde', '\\x',
   E'{"b": [1, 2.50, 1e3],\\n "b": null}', '{"big": 123456789012345678901234567890, "s": "é\\t"}',
   '{NULL,-1}', '{"with space","with \\"quote\\"",NULL,"{}",""}', 'infinity', '-infinity',
   '2000-01-01 00:00:00+00', '4713-01-01 BC', '24:00:00', '-1 mons +3 days', '00000000-0000-0000-0000-000000000000',
   '::1', '2001:db8::/32', 'sad', repeat('wide-', 4000)`,
  `3, 0, 0, 0, 0, 0, 0, 12.5, NULL, '', '', '', NULL, 'null', '[]', '{}', '{}', NULL, NULL, NULL, NULL,
   NULL, NULL, NULL, NULL, NULL, NULL, NULL`,
  `4, NULL, NULL, NULL, NULL, NULL, -1.5, -0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
   '1999-12-31 23:59:59.999999', '1999-12-31 23:59:59.999999-03:30', NULL, NULL, NULL, NULL, NULL, NULL, NULL,
   NULL, NULL`,
  `5, 7, 123456, 9007199254740993, 99999999999999.99999, -1e-20, 3.4028235e38, 1.7976931348623157e308,
   true, repeat('é', 300), 'ü', 'ü', decode(repeat('ff', 100), 'hex'), '  {"padded": true}  ',
   '{"nested": {"arr": [true, false, null]}}', '{{1,2},{3,4}}', '{"a,b","c\\\\d"}',
   '2026-06-30 12:00:00.000001', '2026-06-30 12:00:00+05:45', '2026-06-30 12:00:00.999+00', '0001-01-01',
   '23:59:59.999999', '100 years', 'ffffffff-ffff-ffff-ffff-ffffffffffff', '192.168.1.5/24', '192.168.0.0/16',
   'ok', repeat('z', 10)`,
];

/**
 * Values the two plugins' live paths spell differently (wal2json prints NaN and ±Infinity as null and
 * keeps PostgreSQL's exponent spelling `1e-07`; pgoutput's text goes through value-json.ts: "NaN",
 * `1e-7`). A read is made as pgoutput's decoder makes it, so these rows are compared byte for byte
 * under pgoutput, and as values (non-finite numbers as null) under wal2json.
 */
const FLOAT_ROWS = [
  `6, 1, 1, 1, 1, 'NaN', 'NaN', 'Infinity', true, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
   NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL`,
  `7, 1, 1, 1, 1, 'Infinity', 1e-7, '-Infinity', true, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
   NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL`,
  `8, 1, 1, 1, 1, 1, 3.4028235e38, 1e15, true, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
   NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL`,
];
const FLOAT_SUBJECTS = new Set(['public.bf_types/6', 'public.bf_types/7', 'public.bf_types/8']);

/** A row's values with the spellings wal2json loses: numbers as numbers, non-finite ones as null. */
function asWal2json(after: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(after))
    out[k] = v === 'NaN' || v === 'Infinity' || v === '-Infinity' ? null : v;
  return out;
}

/** An event line from `,"subject":` on, with the op made `r` (the part a read and an insert share). */
function shared(line: string): string {
  const at = line.indexOf(',"subject":');
  return line.slice(at).replace(',"data":{"op":"c",', ',"data":{"op":"r",');
}

/** Where two texts first differ, with some text around it from each (a wide row is kilobytes). */
function firstDifference(a: string, b: string): { at: number; read?: string; insert?: string } {
  let at = 0;
  while (at < a.length && a[at] === b[at]) at++;
  if (at === a.length && a.length === b.length) return { at: -1 };
  return { at, read: a.slice(Math.max(0, at - 40), at + 40), insert: b.slice(Math.max(0, at - 40), at + 40) };
}

describe.each(['wal2json', 'pgoutput'])(
  'backfill reads as the live stream writes rows (--plugin %s)',
  (plugin) => {
    let db: { url: string; drop: () => Promise<void> };
    const file = join(mkdtempSync(join(tmpdir(), 'tagc-bf-json-')), 'events.ndjson');
    let d: Daemon | undefined;

    beforeAll(async () => {
      db = await testDatabase(`bf_json_${plugin}`);
      await sql(db.url, `CREATE TYPE bf_mood AS ENUM ('happy', 'sad', 'ok')`);
      await sql(db.url, `CREATE TABLE ${TABLE} (${COLUMNS})`);
      await sql(db.url, `CREATE TABLE ${GONE} (id serial PRIMARY KEY, v text)`);
      await sql(db.url, `INSERT INTO ${GONE} (v) SELECT md5(g::text) FROM generate_series(1, 20000) g`);
    });
    afterAll(async () => {
      await d?.kill('SIGKILL');
      await db.drop();
    });

    it('every read event equals the insert event of its row, byte for byte after the envelope fields', async () => {
      d = runCli([
        'extract-tasks',
        '--plugin',
        plugin,
        '--pg-url',
        db.url,
        '--slot',
        'bf_json_slot',
        '--sink',
        'file',
        '--file-path',
        file,
        '--serverPort',
        '0',
        '--backfill-chunk-size',
        '2',
        '--preset',
        'none',
        '--tables',
        `${TABLE},${GONE}`,
      ]);
      await waitStreaming(d);
      // Inserted while streaming: each row's insert event is the live stream's bytes for it.
      for (const r of [...ROWS, ...FLOAT_ROWS]) await sql(db.url, `INSERT INTO ${TABLE} VALUES (${r})`);
      const api = await apiUrl(d);
      const res = await fetch(`${api}/v1/api/backfills`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ tables: [TABLE] }),
      });
      expect(res.status).toBe(202);
      const { id } = (await res.json()) as { id: string };
      await waitUntil('the backfill done', async () => (await backfillState(db.url, id)).state === 'done');
      await waitUntil('every read in the file', async () => {
        const lines = readFileSync(file, 'utf8').split('\n');
        return lines.filter((l) => l.includes('"type":"row.read"')).length >= ROWS.length + FLOAT_ROWS.length;
      });

      const lines = readFileSync(file, 'utf8').trim().split('\n');
      const byKind = (type: string) =>
        new Map(
          lines
            .filter((l) => l.includes(`"type":"${type}"`))
            .map((l) => [(JSON.parse(l) as { subject: string }).subject, l] as const),
        );
      const inserts = byKind('row.insert');
      const reads = byKind('row.read');
      expect([...reads.keys()].sort()).toEqual([...inserts.keys()].sort());
      expect(reads.size).toBe(ROWS.length + FLOAT_ROWS.length);
      const bytewise = [...reads.keys()].filter((k) => plugin === 'pgoutput' || !FLOAT_SUBJECTS.has(k));
      const differences = bytewise.map((subject) => ({
        subject,
        ...firstDifference(shared(reads.get(subject)!), shared(inserts.get(subject)!)),
      }));
      expect(differences).toEqual(bytewise.map((subject) => ({ subject, at: -1 })));
      if (plugin === 'wal2json')
        for (const subject of FLOAT_SUBJECTS) {
          const after = (line: string) =>
            (JSON.parse(line) as { data: { after: Record<string, unknown> } }).data.after;
          expect(asWal2json(after(reads.get(subject)!))).toEqual(after(inserts.get(subject)!));
        }
      for (const read of reads.values()) {
        expect(JSON.parse(read)).toMatchObject({ type: 'row.read', data: { op: 'r', before: null } });
      }
    }, 120_000);

    it('fails a backfill whose table is dropped while it runs, and streams on', async () => {
      const api = await apiUrl(d!);
      const res = await fetch(`${api}/v1/api/backfills`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ tables: [GONE], chunkSize: 5 }),
      });
      const body = (await res.json()) as { id: string; message?: string };
      expect({ status: res.status, message: body.message }).toEqual({ status: 202, message: undefined });
      await waitUntil('a few chunks', async () => (await backfillState(db.url, body.id)).chunks >= 3);
      await sql(db.url, `DROP TABLE ${GONE}`);
      await waitUntil(
        'the backfill failed',
        async () => (await backfillState(db.url, body.id)).state === 'failed',
      );
      const got = (await (await fetch(`${api}/v1/api/backfills/${body.id}`)).json()) as { error: string };
      expect(got.error).toMatch(/bf_gone/);
      // The stream goes on: a row written now reaches the file.
      await sql(db.url, `INSERT INTO ${TABLE} (id) VALUES (100)`);
      await waitUntil('the stream after the drop', async () =>
        readFileSync(file, 'utf8').includes('"subject":"public.bf_types/100"'),
      );
    }, 120_000);
  },
);
