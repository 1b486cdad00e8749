import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { CopyOut } from '../../src/api/snapshot/copy-out.ts';
import { CopyTextParser, type CopyField } from '../../src/api/snapshot/copy-text.ts';
import { SnapshotRowEncoder } from '../../src/api/snapshot/row-encoder.ts';
import { jsonEmitterFor, rowShape, type SnapshotTable } from '../../src/api/snapshot/rows.ts';
import { sql, testDatabase } from '../support/db.ts';

/*
 * The Snapshot's JSON emitters checked against PostgreSQL itself, not against code they share: the
 * oracle is `to_json` of the same values, read through a real connection, adjusted only by the value
 * rules of docs/design.md §4 written here as SQL:
 *   - bigint, numeric and money travel as strings: the oracle is `to_json(v::text)` (arrays: `::text[]`);
 *   - bytea travels as base64: `to_json(encode(v, 'base64'))` (without the line breaks encode adds);
 *   - everything else is exactly what `to_json(v)` gives (numbers, booleans, json, ISO timestamps in
 *     the session's time zone, NaN/Infinity as strings, arrays as JSON arrays).
 * The values go in as SQL literals and come out as COPY text (what the Snapshot route reads).
 */

/** [SQL type, SQL literals]: one column per type, one row per literal (missing ones are NULL). */
const COLUMNS: [string, string[]][] = [
  ['smallint', ['-32768', '0', '32767']],
  ['integer', ['-2147483648', '2147483647', '-0']],
  ['bigint', ['-9223372036854775808', '9223372036854775807', '0']],
  ['numeric(30,10)', ['12345678901234567890.0123456789', '-1.5', "'NaN'"]],
  ['numeric', ['0.000000000000000000001', '1e30', "'Infinity'", "'-Infinity'"]],
  ['money', ['1234.56', '-0.01']],
  ['real', ['1.5e-07', '3.4028235e+38', "'NaN'", "'-Infinity'", "'-0'", '0.1']],
  [
    'double precision',
    ['1e+20', '5e-324', '1.7976931348623157e308', "'NaN'", "'Infinity'", "'-0'", '0.1', '123456789.125'],
  ],
  ['boolean', ['true', 'false']],
  [
    'text',
    [`'héllo "wörld"' || chr(9) || '\\ ✓'`, `E'line\\nbreak\\r'`, `'\\N'`, `''`, `E'\\x01\\x1f ctl'`, `'😀'`],
  ],
  ['character varying(20)', ["'x y'", "'tab\tin'"]],
  ['uuid', ["'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'"]],
  ['json', [`'{"a": [1, 2.5, null], "b": "x\\ny"}'`, `'  [1,  2]  '`, `'"s"'`, `'{"k": "é\\u00e9"}'`]],
  ['jsonb', [`'{"b": 1, "a": [true, null]}'`, `'[]'`, `'"x\\ty"'`, `'12.50'`]],
  ['bytea', [`'\\x00ff10'`, `''`, `'abc'`, `decode(repeat('ab', 100), 'hex')`]],
  [
    'timestamp with time zone',
    [
      "'2024-02-29 21:59:59.123456+00'",
      "'1999-12-31 23:59:59.5+05:30'",
      "'2000-01-01 00:00:00-03:30'",
      "'infinity'",
      "'-infinity'",
    ],
  ],
  ['timestamp without time zone', ["'2024-02-29 23:59:59.5'", "'1970-01-01 00:00:00'", "'infinity'"]],
  ['date', ["'2024-02-29'", "'infinity'"]],
  ['time without time zone', ["'12:34:56.789'"]],
  ['time with time zone', ["'12:34:56+05:30'"]],
  ['interval', ["'1 day 02:03:04.5'", "'-1 year'"]],
  ['integer[]', ["'{1,2,NULL}'", "'{}'", "'{{1,2},{3,4}}'"]],
  ['text[]', [`'{"x y",NULL,"a\\"b","back\\\\slash",""}'`, "'{}'"]],
  ['boolean[]', ["'{t,f,NULL}'"]],
  ['double precision[]', ["'{1.5,NaN,-Infinity}'"]],
  ['bigint[]', ["'{9223372036854775807,-1,NULL}'"]],
  ['numeric[]', ["'{1.10,NaN}'"]],
];
const ROWS = Math.max(...COLUMNS.map(([, values]) => values.length));
const EXACT = /^(bigint|numeric|money)\b/;

/** The oracle expression for column `c` of `type`: the contract of docs/design.md §4, in SQL. */
function oracle(c: string, type: string): string {
  const array = type.endsWith('[]');
  if (EXACT.test(type)) return `to_json(${c}::text${array ? '[]' : ''})`;
  if (type === 'bytea') return `to_json(translate(encode(${c}, 'base64'), E'\\n', ''))`;
  return `to_json(${c})`;
}

/** JSON numbers do not keep the sign of zero (JSON.stringify(-0) is "0"): compare -0 as 0. */
function unsignedZero(v: unknown): unknown {
  if (typeof v === 'number') return Object.is(v, -0) ? 0 : v;
  if (Array.isArray(v)) return v.map(unsignedZero);
  if (v && typeof v === 'object')
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unsignedZero(x)]));
  return v;
}

async function copyOut(client: pg.Client, text: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const copy = new CopyOut(
    text,
    (b, start, end) => chunks.push(Buffer.from(b.subarray(start, end))),
    () => undefined,
  );
  client.query(copy);
  await copy.done;
  return Buffer.concat(chunks);
}

describe('Snapshot JSON emitters against PostgreSQL to_json (independent oracle)', () => {
  let db: { url: string; drop: () => Promise<void> };
  const names = COLUMNS.map((_, i) => `c${i}`);
  const table: SnapshotTable = {
    name: 'public.oracle',
    columns: [{ name: 'n', type: 'integer' }, ...COLUMNS.map(([type], i) => ({ name: names[i]!, type }))],
    pk: ['n'],
  };

  beforeAll(async () => {
    db = await testDatabase('jsonoracle');
    await sql(
      db.url,
      `CREATE TABLE oracle (n int PRIMARY KEY, ${COLUMNS.map(([type], i) => `${names[i]} ${type}`).join(', ')})`,
    );
    for (let r = 0; r < ROWS; r++) {
      const values = COLUMNS.map(([type, literals]) =>
        literals[r] === undefined ? 'NULL' : `(${literals[r]})::${type}`,
      );
      await sql(db.url, `INSERT INTO oracle VALUES (${r}, ${values.join(', ')})`);
    }
  });
  afterAll(async () => {
    await db?.drop();
  });

  // UTC as the Snapshot route sets it, and zones with half-hour offsets either side of it.
  for (const zone of ['UTC', 'Asia/Kolkata', 'America/St_Johns']) {
    describe(`TimeZone=${zone}`, () => {
      let client: pg.Client;
      let copy: Buffer;
      /** Per row: the oracle's value per column (parsed from PostgreSQL's JSON text). */
      let expected: Record<string, unknown>[];
      beforeAll(async () => {
        client = new pg.Client({
          connectionString: db.url,
          options: `-c TimeZone=${zone} -c DateStyle=ISO -c IntervalStyle=postgres`,
        });
        await client.connect();
        const { rows } = await client.query<Record<string, string | null>>(
          `SELECT n, ${COLUMNS.map(([type], i) => `${oracle(names[i]!, type)}::text AS ${names[i]}`).join(', ')}
             FROM oracle ORDER BY n`,
        );
        expected = rows.map((row) => {
          const out: Record<string, unknown> = { n: Number(row.n) };
          for (const c of names) out[c] = row[c] === null ? null : JSON.parse(row[c]!);
          return out;
        });
        copy = await copyOut(client, `COPY (SELECT * FROM oracle ORDER BY n) TO STDOUT`);
      });
      afterAll(async () => {
        await client?.end();
      });

      it('each column emitter gives what to_json gives, value by value', () => {
        const fields: CopyField[][] = [];
        const parser = new CopyTextParser((f, count) => fields.push(f.slice(0, count)));
        parser.write(copy);
        parser.end();
        expect(fields).toHaveLength(ROWS);
        const mismatches: string[] = [];
        fields.forEach((row, r) =>
          table.columns.forEach((col, i) => {
            const raw = row[i];
            const got = raw === null || raw === undefined ? null : JSON.parse(jsonEmitterFor(col.type)(raw));
            const want = expected[r]![col.name];
            if (!Object.is(JSON.stringify(unsignedZero(got)), JSON.stringify(unsignedZero(want))))
              mismatches.push(
                `${col.type} ${JSON.stringify(raw)}: emitted ${JSON.stringify(got)}, to_json ${JSON.stringify(want)}`,
              );
          }),
        );
        expect(mismatches).toEqual([]);
      });

      it('whole rows: the byte encoder and the string path write what to_json gives', () => {
        const lines = (out: string) =>
          out
            .split('\n')
            .filter(Boolean)
            .map(
              (l) =>
                JSON.parse(l) as { key: string; after: Record<string, unknown>; data: { after: unknown } },
            );

        const enc = new SnapshotRowEncoder(table, 'ws', undefined);
        const parts: Buffer[] = [];
        // Across awkward chunk boundaries: one byte, then rows cut mid-value.
        for (const [from, to] of [
          [0, 1],
          [1, 777],
          [777, copy.length],
        ] as const) {
          enc.write(copy.subarray(from, to));
          parts.push(...enc.take());
        }
        enc.end();
        parts.push(...enc.take());
        const encoded = lines(Buffer.concat(parts).toString('utf8'));

        const shape = rowShape(table, 'ws');
        let text = '';
        const parser = new CopyTextParser((f, count) => (text += shape.line(f.slice(0, count))));
        parser.write(copy);
        parser.end();
        const stringPath = lines(text);

        for (const rows of [encoded, stringPath]) {
          expect(rows).toHaveLength(ROWS);
          rows.forEach((row, r) => {
            expect(Object.keys(row.after)).toEqual(table.columns.map((c) => c.name));
            expect(unsignedZero(row.after)).toEqual(unsignedZero(expected[r]));
            expect(row.data.after).toEqual(row.after);
            // The key of a one-column integer key is its text (a partition key is always a string).
            expect(row.key).toBe(String(r));
          });
        }
      });
    });
  }
});
