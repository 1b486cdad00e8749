import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { CopyTextParser, type CopyField } from '../../src/api/snapshot/copy-text.ts';
import { jsonEmitterFor, rowShape } from '../../src/api/routes/snapshot.ts';
import { converterFor } from '../../src/extractor/values.ts';

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

describe('Snapshot row JSON', () => {
  const same = (type: string, raw: string) =>
    expect(jsonEmitterFor(type)(raw)).toBe(JSON.stringify(converterFor(type)(raw)));

  it('emits what JSON.stringify(converterFor(type)(raw)) gives', () => {
    for (const [type, raw] of [
      ['integer', '-2147483648'],
      ['smallint', '0'],
      ['bigint', '9223372036854775807'],
      ['numeric(30,10)', '12345678901234567890.0123456789'],
      ['double precision', 'NaN'],
      ['double precision', '-Infinity'],
      ['double precision', '1e+20'],
      ['double precision', '-0'],
      ['real', '1.5e-07'],
      ['boolean', 't'],
      ['boolean', 'f'],
      ['json', '{"a": [1, 2.5, null], "b": "x\\ny"}'],
      ['jsonb', 'not json'],
      ['bytea', '\\x00ff10'],
      ['timestamp with time zone', '2024-02-29 21:59:59.123456+00'],
      ['timestamp without time zone', '2024-02-29 23:59:59.5'],
      ['integer[]', '{1,2,NULL}'],
      ['text[]', '{"x y",NULL,"a\\"b"}'],
      ['text', 'héllo "wörld"\t\\ ✓'],
      ['uuid', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'],
    ])
      same(type!, raw!);
  });

  it('property: numbers', () => {
    fc.assert(
      fc.property(fc.double(), (d) => {
        const raw = Number.isNaN(d)
          ? 'NaN'
          : d === Infinity
            ? 'Infinity'
            : d === -Infinity
              ? '-Infinity'
              : String(d);
        same('double precision', raw);
        same('real', raw);
      }),
    );
    fc.assert(fc.property(fc.integer(), (i) => same('integer', String(i))));
  });

  it('a row line equals JSON.stringify of the row object built column by column', () => {
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
    const after: Record<string, unknown> = {};
    t.columns.forEach(
      (c, i) => (after[c.name] = fields[i] === null ? null : converterFor(c.type)(fields[i]!)),
    );
    expect(shape.line(fields)).toBe(
      JSON.stringify({
        type: 'snapshot.row',
        schema: 'public',
        table: 't"x',
        key: '42,7',
        after,
        data: { op: 'r', schema: 'public', table: 't"x', before: null, after },
      }) + '\n',
    );
    expect(shape.inWorkspaces(fields, new Set(['w1']))).toBe(false);
    expect(shape.inWorkspaces(['1', '2', 'x', 'w1', 'f'], new Set(['w1']))).toBe(true);
  });
});
