import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { PassThrough } from 'node:stream';
import type pg from 'pg';
import { CopyOut } from '../../src/api/snapshot/copy-out.ts';
import { CopyTextParser, type CopyField } from '../../src/api/snapshot/copy-text.ts';
import { SnapshotRowEncoder } from '../../src/api/snapshot/row-encoder.ts';
import { jsonEmitterFor, rowShape, type SnapshotTable } from '../../src/api/snapshot/rows.ts';

/** Reference encoder: what COPY ... TO STDOUT (text format) writes for these rows. */
function encodeCopyText(rows: CopyField[][]): string {
  const esc: Record<string, string> = {
    '\\': '\\\\',
    '\b': '\\b',
    '\f': '\\f',
    '\n': '\\n',
    '\r': '\\r',
    '\t': '\\t',
    '\v': '\\v',
  };
  return rows
    .map(
      (row) =>
        row.map((f) => (f === null ? '\\N' : f.replace(/[\\\b\f\n\r\t\v]/g, (c) => esc[c]!))).join('\t') +
        '\n',
    )
    .join('');
}

/**
 * A looser encoder COPY FROM would also accept: characters written as octal or hex byte escapes (all
 * bytes of their UTF-8 form), or backslash + the character itself where that means the character.
 */
function encodeLoose(rows: CopyField[][], choices: number[]): string {
  let k = 0;
  const pick = () => choices[k++ % choices.length]!;
  const field = (f: string): string => {
    let out = '';
    const chars = [...f];
    chars.forEach((ch, n) => {
      const mode = pick();
      const bytes = [...Buffer.from(ch, 'utf8')];
      if (mode === 1)
        // Octal takes up to 3 digits: a short form only where no digit follows.
        out += bytes
          .map((b, m) => {
            const last = m === bytes.length - 1 && (n === chars.length - 1 || !/[0-9]/.test(chars[n + 1]!));
            return '\\' + b.toString(8).padStart(last && pick() % 2 ? 1 : 3, '0');
          })
          .join('');
      else if (mode === 2) out += bytes.map((b) => '\\x' + b.toString(16).padStart(2, '0')).join('');
      else if (mode === 3 && !/[\tnN\nbfrtvx0-7\r]/.test(ch)) out += '\\' + ch;
      else out += encodeCopyText([[ch]]).slice(0, -1);
    });
    return out;
  };
  return rows.map((row) => row.map((f) => (f === null ? '\\N' : field(f))).join('\t') + '\n').join('');
}

function parseChunks(chunks: Uint8Array[]): CopyField[][] {
  const rows: CopyField[][] = [];
  const parser = new CopyTextParser((fields, count) => rows.push(fields.slice(0, count)));
  for (const c of chunks) parser.write(c);
  parser.end();
  return rows;
}

function split(buf: Buffer, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const c of at) {
    out.push(buf.subarray(from, c));
    from = c;
  }
  out.push(buf.subarray(from));
  return out;
}

const text = fc.oneof(
  fc.string({ unit: 'grapheme' }),
  fc.string({
    unit: fc.constantFrom('\\', '\t', '\n', '\r', '\b', '\f', '\v', 'N', 'a', '0', '7', 'x', 'é', '✓', '😀'),
  }),
  fc.constantFrom('\\N', 'N', '', '\\', '\\\\N', '\\.'),
);
const rowsArb = fc.integer({ min: 1, max: 6 }).chain((cols) =>
  fc.array(fc.array(fc.option(text, { nil: null }), { minLength: cols, maxLength: cols }), {
    maxLength: 20,
  }),
);

describe('COPY text parser', () => {
  it('parses fields, NULLs and escapes', () => {
    const data = Buffer.from(
      'a\tb\\tc\t\\N\n\\\\N\t\t\\n\\r\\b\\f\\v\\\\\nx\\101\\60\\x41\\x4a\\q\\\t\\303\\251\t\\342\\234\\223\n',
    );
    expect(parseChunks([data])).toEqual([
      ['a', 'b\tc', null],
      ['\\N', '', '\n\r\b\f\v\\'],
      ['xA0AJq\\', 'é', '✓'],
    ]);
  });

  it('keeps rows whole across chunks, multi-byte characters split included', () => {
    const data = Buffer.from('héllo\twörld ✓\n😀\t\\N\n');
    for (let i = 0; i <= data.length; i++)
      for (let j = i; j <= data.length; j++)
        expect(parseChunks([data.subarray(0, i), data.subarray(i, j), data.subarray(j)])).toEqual([
          ['héllo', 'wörld ✓'],
          ['😀', null],
        ]);
  });

  it('refuses data that ends inside a row', () => {
    const parser = new CopyTextParser(() => undefined);
    parser.write(Buffer.from('a\tb\nc\td'));
    expect(() => parser.end()).toThrow(/ends inside a row/);
  });

  it('a single long row over many chunks', () => {
    const long = 'x\\t'.repeat(100_000);
    const chunks = split(
      Buffer.from(long + '\tend\n'),
      Array.from({ length: 500 }, (_, i) => i * 600),
    );
    expect(parseChunks(chunks)).toEqual([['x\t'.repeat(100_000), 'end']]);
  });

  it('property: rows encoded as COPY TO writes them parse back equal, across random chunk splits', () => {
    fc.assert(
      fc.property(rowsArb, fc.array(fc.nat(), { maxLength: 8 }), (rows, cuts) => {
        const buf = Buffer.from(encodeCopyText(rows), 'utf8');
        expect(parseChunks(split(buf, cuts))).toEqual(rows);
      }),
      { numRuns: 500 },
    );
  });

  it('property: octal/hex/self escapes (as COPY FROM accepts them) parse back equal', () => {
    fc.assert(
      fc.property(
        rowsArb,
        fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 16 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        (rows, choices, cuts) => {
          const buf = Buffer.from(encodeLoose(rows, choices), 'utf8');
          expect(parseChunks(split(buf, cuts))).toEqual(rows);
        },
      ),
      { numRuns: 500 },
    );
  });
});

/*
 * The emitters against expectations written here by hand from the value rules (docs/design.md §4),
 * never against converterFor or anything else they share code with. PostgreSQL's own to_json is the
 * oracle of test/integration/snapshot-json-oracle.test.ts.
 */
describe('Snapshot row JSON', () => {
  it('emits each type as docs/design.md §4 types it', () => {
    for (const [type, raw, json] of [
      ['integer', '-2147483648', '-2147483648'],
      ['smallint', '0', '0'],
      ['bigint', '9223372036854775807', '"9223372036854775807"'],
      ['numeric(30,10)', '12345678901234567890.0123456789', '"12345678901234567890.0123456789"'],
      ['double precision', 'NaN', '"NaN"'],
      ['double precision', '-Infinity', '"-Infinity"'],
      ['double precision', '1e+20', '100000000000000000000'],
      ['double precision', '-0', '0'],
      ['real', '1.5e-07', '1.5e-7'],
      ['boolean', 't', 'true'],
      ['boolean', 'f', 'false'],
      ['json', '{"a": [1, 2.5, null], "b": "x\\ny"}', '{"a":[1,2.5,null],"b":"x\\ny"}'],
      ['jsonb', 'not json', '"not json"'],
      ['bytea', '\\x00ff10', '"AP8Q"'],
      ['timestamp with time zone', '2024-02-29 21:59:59.123456+00', '"2024-02-29T21:59:59.123456+00:00"'],
      ['timestamp with time zone', '1999-12-31 23:59:59.5+05:30', '"1999-12-31T23:59:59.5+05:30"'],
      ['timestamp with time zone', 'infinity', '"infinity"'],
      ['timestamp without time zone', '2024-02-29 23:59:59.5', '"2024-02-29T23:59:59.5"'],
      ['integer[]', '{1,2,NULL}', '[1,2,null]'],
      ['text[]', '{"x y",NULL,"a\\"b"}', '["x y",null,"a\\"b"]'],
      ['text', 'héllo "wörld"\t\\ ✓', '"héllo \\"wörld\\"\\t\\\\ ✓"'],
      ['uuid', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"'],
    ])
      expect([type, raw, jsonEmitterFor(type!)(raw!)]).toEqual([type, raw, json]);
  });

  it('property: a float is the JSON number of its value, NaN and ±Infinity their Postgres spelling', () => {
    const spell = (d: number) =>
      Number.isNaN(d) ? 'NaN' : d === Infinity ? 'Infinity' : d === -Infinity ? '-Infinity' : String(d);
    fc.assert(
      fc.property(fc.double(), fc.constantFrom('double precision', 'real'), (d, type) => {
        const out: unknown = JSON.parse(jsonEmitterFor(type)(spell(d)));
        if (Number.isFinite(d))
          expect(out === d).toBe(true); // -0 and 0 alike: JSON has one zero
        else expect(out).toBe(spell(d));
      }),
    );
  });

  it('property: int2/int4 are JSON numbers, int8 a JSON string of the same digits', () => {
    fc.assert(
      fc.property(fc.integer(), (i) => expect(JSON.parse(jsonEmitterFor('integer')(String(i)))).toBe(i)),
    );
    fc.assert(
      fc.property(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), (i) =>
        expect(JSON.parse(jsonEmitterFor('bigint')(String(i)))).toBe(String(i)),
      ),
    );
  });

  it('a row line is the snapshot.row object, its values typed by hand', () => {
    const t = {
      name: 'public.t"x',
      columns: [
        { name: 'id', type: 'bigint' },
        { name: '2', type: 'integer' },
        { name: 'n"ame', type: 'text' },
        { name: 'ws', type: 'text' },
        { name: '1', type: 'boolean' },
      ],
      pk: ['id', '2'],
    };
    const fields: CopyField[] = ['42', '7', 'a\tb', null, 't'];
    const shape = rowShape(t, 'ws');
    // Integer-like names first, as a JS object orders them (the change stream builds rows the same way).
    const after = { '1': true, '2': 7, id: '42', 'n"ame': 'a\tb', ws: null };
    expect(JSON.parse(shape.line(fields))).toEqual({
      type: 'snapshot.row',
      schema: 'public',
      table: 't"x',
      key: '["42",7]', // composite keys: a JSON array text (never a comma join)
      after,
      data: { op: 'r', schema: 'public', table: 't"x', before: null, after },
    });
    expect(Object.keys(JSON.parse(shape.line(fields)).after)).toEqual(['1', '2', 'id', 'n"ame', 'ws']);
    expect(shape.line(fields).endsWith('}}\n')).toBe(true);
    expect(shape.inWorkspaces(fields, new Set(['w1']))).toBe(false);
    expect(shape.inWorkspaces(['1', '2', 'x', 'w1', 'f'], new Set(['w1']))).toBe(true);
  });
});

/** What the route wrote before the byte encoder: RowShape.line per parsed row. */
function referenceLines(
  t: SnapshotTable,
  workspaces: Set<string> | undefined,
  chunks: Uint8Array[],
): { out: Buffer; rows: number } {
  const shape = rowShape(t, 'ws');
  let out = '';
  let rows = 0;
  const parser = new CopyTextParser((fields, count) => {
    for (let i = count; i < t.columns.length; i++) fields[i] = undefined as unknown as CopyField;
    if (workspaces && !shape.inWorkspaces(fields, workspaces)) return;
    out += shape.line(fields);
    rows++;
  });
  for (const c of chunks) parser.write(c);
  parser.end();
  return { out: Buffer.from(out, 'utf8'), rows };
}

function encoded(
  t: SnapshotTable,
  workspaces: Set<string> | undefined,
  chunks: Uint8Array[],
): { out: Buffer; rows: number; sizes: number[] } {
  const enc = new SnapshotRowEncoder(t, 'ws', workspaces);
  const out: Buffer[] = [];
  for (const c of chunks) {
    enc.write(c);
    out.push(...enc.take());
  }
  enc.end();
  out.push(...enc.take());
  return { out: Buffer.concat(out), rows: enc.rows, sizes: out.map((b) => b.length) };
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');
const timestamp = (tz: boolean) =>
  fc
    .tuple(
      fc.date({
        min: new Date('0001-01-01T00:00:00Z'),
        max: new Date('9999-12-31T00:00:00Z'),
        noInvalidDate: true,
      }),
      fc.integer({ min: 0, max: 999_999 }),
      fc.constantFrom('+00', '-08', '+05:30', '+13:45', '-03:30'),
      fc.boolean(),
    )
    .map(([d, us, off, frac]) => {
      const base = `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
      return base + (frac ? '.' + pad(us, 6).replace(/0+$/, '') : '') + (tz ? off : '');
    });
const TYPES: Record<string, fc.Arbitrary<string>> = {
  text: text,
  'character varying(20)': fc.string(),
  bigint: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(String),
  integer: fc.integer().map(String),
  smallint: fc.integer({ min: -32768, max: 32767 }).map(String),
  boolean: fc.constantFrom('t', 'f'),
  'timestamp with time zone': fc.oneof(timestamp(true), fc.constantFrom('infinity', '-infinity')),
  'timestamp without time zone': fc.oneof(timestamp(false), fc.constant('2024-01-01 00:00:00 BC')),
  'double precision': fc.oneof(
    fc.double().map((d) => (Object.is(d, -0) ? '-0' : String(d))),
    fc.constantFrom('NaN', 'Infinity', '-Infinity', '1e+20', '1.5e-07'),
  ),
  'numeric(30,10)': fc.constantFrom('0', '-1.5000000000', 'NaN', '12345678901234567890.0123456789'),
  json: fc.json(),
  jsonb: fc.constantFrom('{"a": 1}', '[1, 2.5, null]', '"x\\ty"'),
  bytea: fc.uint8Array({ maxLength: 8 }).map((b) => '\\x' + Buffer.from(b).toString('hex')),
  'text[]': fc.constantFrom('{}', '{"x y",NULL,z,"q\\"uote","back\\\\slash"}', '{""}'),
  'integer[]': fc.constantFrom('{1,2,NULL}', '{}'),
  uuid: fc.uuid(),
  date: fc.constantFrom('2024-02-29', '0001-01-01 BC', 'infinity'),
};
const NAMES = ['id', 'ws', 'label', '2', '1', 'n"ame', 'at', 'é', 'x y'];
const tableArb = fc
  .uniqueArray(fc.record({ name: fc.constantFrom(...NAMES), type: fc.constantFrom(...Object.keys(TYPES)) }), {
    selector: (c) => c.name,
    minLength: 1,
    maxLength: 7,
  })
  .chain((columns) =>
    fc.record({
      name: fc.constantFrom('public.t', 'odd"schema.t\\x'),
      columns: fc.constant(columns),
      pk: fc.subarray([...columns.map((c) => c.name), 'missing'], { maxLength: 2 }),
    }),
  );
const tableRowsArb = tableArb.chain((t) =>
  fc.record({
    t: fc.constant(t as SnapshotTable),
    rows: fc.array(
      fc.tuple(
        ...t.columns.map((c) =>
          fc.option(c.name === 'ws' ? fc.constantFrom('w1', 'w2', '1') : fc.oneof(TYPES[c.type]!, text), {
            nil: null,
            freq: 6,
          }),
        ),
      ),
      { maxLength: 15 },
    ),
  }),
);

describe('Snapshot row encoder (bytes)', () => {
  it('property: writes exactly what RowShape.line gives, any types, values, chunk splits', () => {
    fc.assert(
      fc.property(
        tableRowsArb,
        fc.array(fc.nat(), { maxLength: 8 }),
        fc.option(fc.constantFrom(new Set(['w1']), new Set(['1', 'w2'])), { nil: undefined }),
        fc.option(fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 16 }), {
          nil: undefined,
        }),
        ({ t, rows }, cuts, workspaces, loose) => {
          const copy = loose ? encodeLoose(rows, loose) : encodeCopyText(rows);
          const chunks = split(Buffer.from(copy, 'utf8'), cuts);
          const got = encoded(t, workspaces, chunks);
          const want = referenceLines(t, workspaces, chunks);
          expect(got.out.toString('utf8')).toBe(want.out.toString('utf8'));
          expect(got.out.equals(want.out)).toBe(true);
          expect(got.rows).toBe(want.rows);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('invalid UTF-8 and control bytes come out as the string path writes them', () => {
    const t: SnapshotTable = {
      name: 'public.t',
      columns: [
        { name: 'id', type: 'text' },
        { name: 'ts', type: 'timestamp with time zone' },
        { name: 'b', type: 'boolean' },
      ],
      pk: ['id'],
    };
    const data = Buffer.concat([
      Buffer.from('a\u0001\u001f\u007f\u2028"\t2024-01-01 00:00:00+00\tt\n'),
      Buffer.from([0x78, 0xc3, 0x09, 0x5c, 0x4e, 0x09, 0x74, 0x72, 0x75, 0x65, 0x0a]), // x\xc3 \N true
      Buffer.from('\\x41\\101\t2024-01-01 00:00:00.5-03:30\t\\N\n'),
    ]);
    for (let i = 0; i <= data.length; i++) {
      const chunks = [data.subarray(0, i), data.subarray(i)];
      expect(encoded(t, undefined, chunks).out.equals(referenceLines(t, undefined, chunks).out)).toBe(true);
    }
    expect(encoded(t, undefined, [data]).rows).toBe(3);
  });

  it('a table without columns, a long value, and rows spread over 64 KiB buffers', () => {
    const none: SnapshotTable = { name: 'public.e', columns: [], pk: [] };
    const data = Buffer.from('\\N\n\\N\n');
    expect(encoded(none, undefined, [data]).out.equals(referenceLines(none, undefined, [data]).out)).toBe(
      true,
    );

    const t: SnapshotTable = {
      name: 'public.big',
      columns: [
        { name: 'id', type: 'integer' },
        { name: 'j', type: 'json' },
        { name: 'pad', type: 'text' },
      ],
      pk: ['id', 'j'],
    };
    const rows: CopyField[][] = [];
    for (let i = 0; i < 3000; i++)
      rows.push([String(i), `{"n": ${i}}`, i % 1000 === 7 ? 'x\t"'.repeat(50_000) : 'p'.repeat(i % 200)]);
    const buf = Buffer.from(encodeCopyText(rows));
    const chunks = split(
      buf,
      Array.from({ length: 40 }, (_, i) => i * 20_011),
    );
    const got = encoded(t, undefined, chunks);
    expect(got.out.equals(referenceLines(t, undefined, chunks).out)).toBe(true);
    expect(got.rows).toBe(3000);
    expect(Math.max(...got.sizes.slice(0, -1))).toBeLessThanOrEqual(2 * 1024 * 1024);
  });
});

describe('Snapshot row encoder (raw bytes)', () => {
  const t: SnapshotTable = {
    name: 'public.raw',
    columns: [
      { name: 'id', type: 'text' },
      { name: 'n', type: 'integer' },
      { name: 'at', type: 'timestamp with time zone' },
      { name: 'b', type: 'boolean' },
      { name: 'j', type: 'jsonb' },
      { name: '1', type: 'text' },
    ],
    pk: ['id'],
  };
  /** Any bytes but the delimiters: invalid UTF-8, stray backslashes and all. */
  /** Bytes and byte sequences at the edges of UTF-8 (Unicode Table 3-7), JSON escaping and COPY escapes. */
  const piece = fc.oneof(
    fc.integer({ min: 0, max: 255 }).map((c) => [c]),
    fc.constantFrom(
      ...[0x00, 0x08, 0x0b, 0x0d, 0x1f, 0x22, 0x5c, 0x7f, 0x80, 0xbf, 0xc0, 0xc1, 0xf5, 0xff].map((c) => [c]),
      ...[
        [0x5c, 0x4e],
        [0x5c, 0x5c],
        [0x5c, 0x74],
        [0x5c, 0x30],
        [0x5c, 0x78, 0x41],
        [0x5c, 0xc3, 0xa9],
      ],
      ...[[0xc2, 0x80], [0xdf, 0xbf], [0xc1, 0xbf], [0xc2], [0xe0, 0xa0, 0x80], [0xe0, 0x9f, 0xbf]],
      ...[
        [0xe1, 0x80],
        [0xed, 0x9f, 0xbf],
        [0xed, 0xa0, 0x80],
        [0xef, 0xbf, 0xbf],
        [0xf0, 0x90, 0x80, 0x80],
      ],
      ...[
        [0xf0, 0x8f, 0xbf, 0xbf],
        [0xf4, 0x8f, 0xbf, 0xbf],
        [0xf4, 0x90, 0x80, 0x80],
        [0xf3, 0xbf, 0xbf],
      ],
      ...[...Buffer.from('Ntx07rbfnv+-: ')].map((c) => [c]),
    ),
  );
  /** Any bytes but the delimiters: invalid UTF-8, stray backslashes and all. */
  const field = fc
    .array(piece, { maxLength: 8 })
    .map((a) => Buffer.from(a.flat().map((c) => (c === 9 || c === 10 ? 0x5c : c))));
  const rowBytes = fc
    .array(field, { minLength: 6, maxLength: 6 })
    .map((fields) => Buffer.concat([...fields.flatMap((f, i) => [f, Buffer.from(i === 5 ? '\n' : '\t')])]));

  it('property: any bytes come out as the string path writes them', () => {
    for (const table of [t, { ...t, columns: t.columns.slice(0, 5) }]) {
      fc.assert(
        fc.property(
          fc.array(rowBytes, { maxLength: 8 }),
          fc.array(fc.nat(), { maxLength: 4 }),
          (rows, cuts) => {
            const data = Buffer.concat(
              rows.map((r) =>
                table.columns.length === 6 ? r : Buffer.concat([r.subarray(0, -1), Buffer.from('\tx\n')]),
              ),
            );
            const chunks = split(data, cuts);
            const got = encoded(table, undefined, chunks);
            const want = referenceLines(table, undefined, chunks);
            expect(got.out.equals(want.out)).toBe(true);
            expect(got.rows).toBe(want.rows);
          },
        ),
        { numRuns: 1000 },
      );
    }
  });

  it('writeRange (one CopyData message per row) writes what write does', () => {
    const rows: CopyField[][] = [];
    for (let i = 0; i < 500; i++)
      rows.push([`k${i}`, String(i), '2024-01-01 00:00:00+02', i % 2 ? 't' : 'f', `{"i": ${i}}`, 'é\\t✓']);
    const lines = encodeCopyText(rows)
      .split(/(?<=\n)/)
      .map((l) => Buffer.from(l));
    // Each row inside a larger buffer, as a message payload is.
    const enc = new SnapshotRowEncoder(t, 'ws');
    const out: Buffer[] = [];
    for (const l of lines) {
      const framed = Buffer.concat([Buffer.from([0x64, 0, 0, 0, 0]), l, Buffer.from([0x63, 0, 0, 0, 4])]);
      enc.writeRange(framed, 5, 5 + l.length);
      out.push(...enc.take());
    }
    // A row split over two ranges.
    const split2 = Buffer.from('kx\t1\t\\N\tt\tnull\tz\n');
    enc.writeRange(split2, 0, 5);
    enc.writeRange(split2, 5, split2.length);
    enc.end();
    out.push(...enc.take());
    const all = Buffer.concat([...lines, split2]);
    expect(Buffer.concat(out).equals(referenceLines(t, undefined, [all]).out)).toBe(true);
    expect(enc.rows).toBe(501);
  });

  it('a run larger than the scratch bound (scratch sized per row)', () => {
    const rows: CopyField[][] = [];
    for (let i = 0; i < 2000; i++)
      rows.push([
        `k${i}`,
        String(i),
        null,
        't',
        i % 100 ? '[1]' : JSON.stringify({ s: 'x'.repeat(9000) }),
        'y'.repeat(i % 900),
      ]);
    const data = Buffer.from(encodeCopyText(rows));
    expect(data.length).toBeGreaterThan(1_000_000);
    const got = encoded(t, new Set(['k1']), [data]);
    expect(got.out.equals(referenceLines(t, new Set(['k1']), [data]).out)).toBe(true);
    const all = encoded(t, undefined, [data]);
    expect(all.out.equals(referenceLines(t, undefined, [data]).out)).toBe(true);
    expect(all.rows).toBe(2000);
  });
});

describe('Snapshot row encoder (slab reuse)', () => {
  it('reuses released slabs without touching views still held', () => {
    const t: SnapshotTable = {
      name: 'public.s',
      columns: [
        { name: 'id', type: 'bigint' },
        { name: 'label', type: 'text' },
      ],
      pk: ['id'],
    };
    const rows: CopyField[][] = [];
    for (let i = 0; i < 60_000; i++) rows.push([String(i), 'x'.repeat(i % 97) + '\t"' + i]);
    const data = Buffer.from(encodeCopyText(rows));
    const enc = new SnapshotRowEncoder(t, 'ws');
    const copies: Buffer[] = [];
    const held: [Buffer, Buffer][] = [];
    const buffers = new Set<ArrayBufferLike>();
    let n = 0;
    const consume = (): void => {
      for (const view of enc.take()) {
        const copy = Buffer.from(view);
        copies.push(copy);
        buffers.add(view.buffer);
        // Some views are held (not written yet) until the end; the others are released at once.
        if (n++ % 50 === 0) held.push([view, copy]);
        else enc.release(view);
      }
    };
    for (let i = 0; i < data.length; i += 7919) {
      enc.write(data.subarray(i, i + 7919));
      consume();
    }
    enc.end();
    consume();
    for (const [view, copy] of held) expect(view.equals(copy)).toBe(true);
    expect(Buffer.concat(copies).equals(referenceLines(t, undefined, [data]).out)).toBe(true);
    expect(Buffer.concat(copies).length).toBeGreaterThan(8 * 1024 * 1024);
    // Slabs came back: fewer than one per MiB written.
    expect(buffers.size).toBeLessThan(Buffer.concat(copies).length / (1024 * 1024) / 1.5);
  });
});

describe('CopyOut (COPY TO STDOUT off the socket)', () => {
  const msg = (code: string, body: Buffer | string): Buffer => {
    const b = Buffer.from(body);
    const head = Buffer.alloc(5);
    head[0] = code.charCodeAt(0);
    head.writeUInt32BE(b.length + 4, 1);
    return Buffer.concat([head, b]);
  };
  const after = Buffer.concat([msg('C', 'COPY 3\0'), msg('Z', 'T')]);

  /** Feeds `data` in pieces cut at `cuts`; returns the payloads, what pg's handler got and the query. */
  async function run(data: Buffer, cuts: number[], wait?: () => Promise<void> | undefined) {
    const stream = new PassThrough();
    const pg: Buffer[] = [];
    stream.on('data', (b: Buffer) => pg.push(Buffer.from(b)));
    let sent = '';
    const payloads: Buffer[] = [];
    const copy = new CopyOut(
      'COPY t TO STDOUT',
      (b, start, end) => payloads.push(Buffer.from(b.subarray(start, end))),
      () => wait?.(),
    );
    copy.submit({ stream, query: (text: string) => (sent = text) } as unknown as pg.Connection);
    for (const piece of split(data, cuts)) {
      stream.write(piece);
      await new Promise((r) => setImmediate(r));
    }
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    return { payloads, pg: Buffer.concat(pg), sent, copy };
  }

  const rowsArb = fc.array(
    fc.string({ unit: 'binary', maxLength: 30 }).map((s) => s + '\n'),
    {
      maxLength: 12,
    },
  );

  it('property: hands over each CopyData payload and gives pg what follows CopyDone', async () => {
    await fc.assert(
      fc.asyncProperty(rowsArb, fc.array(fc.nat(), { maxLength: 10 }), async (rows, cuts) => {
        const data = Buffer.concat([
          msg('H', Buffer.from([0, 0, 1, 0, 0])),
          ...rows.map((r, i) => (i === 1 ? Buffer.concat([msg('N', 'notice\0'), msg('d', r)]) : msg('d', r))),
          msg('c', ''),
          after,
        ]);
        const got = await run(data, cuts);
        expect(got.sent).toBe('COPY t TO STDOUT');
        expect(got.payloads.map((p) => p.toString())).toEqual(rows.map((r) => Buffer.from(r).toString()));
        expect(got.pg.equals(after)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('an ErrorResponse goes to pg, itself included', async () => {
    const err = Buffer.concat([msg('E', 'SERROR\0Mboom\0\0'), msg('Z', 'E')]);
    const data = Buffer.concat([msg('H', Buffer.from([0, 0, 0])), msg('d', 'a\n'), err]);
    for (let cut = 0; cut <= data.length; cut++) {
      const got = await run(data, [cut]);
      expect(got.payloads.map(String)).toEqual(['a\n']);
      expect(got.pg.equals(err)).toBe(true);
    }
  });

  it('reads no further while the consumer waits', async () => {
    let release: () => void = () => undefined;
    let waits = 0;
    const data = Buffer.concat([msg('d', 'a\n'), msg('d', 'b\n'), msg('c', ''), after]);
    const got = await run(data, [7], () => {
      waits++;
      return new Promise<void>((r) => (release = r));
    });
    // One chunk read, then waiting: the second row stays in the socket.
    expect(got.payloads.map(String)).toEqual(['a\n']);
    expect(waits).toBe(1);
    release();
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    expect(got.payloads.map(String)).toEqual(['a\n', 'b\n']);
  });

  it('settles done at ReadyForQuery, with the error if pg reported one', async () => {
    const copy = new CopyOut(
      'COPY t TO STDOUT',
      () => undefined,
      () => undefined,
    );
    copy.handleCommandComplete({ text: 'COPY 42' });
    copy.handleReadyForQuery();
    await expect(copy.done).resolves.toBeUndefined();
    expect(copy.rowCount).toBe(42);
    const failing = new CopyOut(
      'COPY t TO STDOUT',
      () => undefined,
      () => undefined,
    );
    failing.handleError(new Error('boom'));
    failing.handleReadyForQuery();
    await expect(failing.done).rejects.toThrow('boom');
  });
});
