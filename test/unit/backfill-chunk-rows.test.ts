import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { ChunkRows } from '../../src/extractor/backfill/chunk-rows.ts';
import { WatermarkError } from '../../src/extractor/backfill/messages.ts';
import { textToJsonFor } from '../../src/extractor/decode/index.ts';

/** All of a chunk's rows' values (ChunkRows, one row at a time). */
function scan(text: string, columns: string[], types: string[]): string[][] {
  const rows = new ChunkRows(text, columns, types);
  const out: string[][] = [];
  for (let r = rows.next(); r; r = rows.next()) out.push([...r.values]);
  expect(rows.count).toBe(out.length);
  return out;
}

/** The rows' JSON text as PostgreSQL's json_agg(json_build_array(...)) spaces it, or with `gap` between tokens. */
function pgText(rows: (string | null)[][], gap = ' '): string {
  const row = (r: (string | null)[]) => '[' + r.map((v) => JSON.stringify(v)).join(',' + gap) + ']';
  return '[' + rows.map(row).join(',' + gap + '\n' + gap) + ']';
}

const TYPES = [
  'text',
  'bigint',
  'integer',
  'numeric(10,2)',
  'double precision',
  'boolean',
  'jsonb',
  'json',
  'bytea',
  'timestamp with time zone',
  'timestamp(3) without time zone',
  'text[]',
  'uuid',
];

/** Text forms that exercise each type's paths: ordinary values, odd ones, and any string at all. */
const valueOf = (type: string): fc.Arbitrary<string | null> => {
  const any = fc.string({ unit: 'binary', maxLength: 12 });
  const by: Record<string, fc.Arbitrary<string>> = {
    bigint: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(String),
    integer: fc.oneof(fc.integer().map(String), fc.constantFrom('-0', '007', '1e3')),
    'double precision': fc.oneof(
      fc.double().map(String),
      fc.constantFrom('NaN', 'Infinity', '-Infinity', '1e-07', '0.1', '-0'),
    ),
    boolean: fc.constantFrom('true', 'false', 't', 'f'),
    jsonb: fc.oneof(fc.json(), fc.constant('{"a": [1, 2.50], "b": "\\"q\\""}')),
    json: fc.oneof(fc.json(), fc.constant('{"a": 1,\n "a": 2}')),
    bytea: fc.uint8Array({ maxLength: 8 }).map((b) => '\\x' + Buffer.from(b).toString('hex')),
    'timestamp with time zone': fc.constantFrom(
      '2026-01-02 03:04:05.123456+02',
      '2026-01-02 03:04:05+05:30',
      'infinity',
      '0044-03-15 12:00:00+00 BC',
    ),
    'timestamp(3) without time zone': fc.constantFrom('2026-01-02 03:04:05.123', '-infinity'),
    'text[]': fc
      .array(fc.string({ maxLength: 4 }))
      .map((a) => '{' + a.map((e) => '"' + e.replace(/["\\]/g, '\\$&') + '"').join(',') + '}'),
  };
  return fc.option(by[type] ?? any, { nil: null, freq: 5 });
};

describe('chunk rows: the database JSON text → the live path values (chunk-rows.ts)', () => {
  it('gives each value as the pgoutput decoder does (textToJsonFor), whatever it holds', () => {
    const chunks = fc
      .uniqueArray(fc.constantFrom(...TYPES), { minLength: 1, maxLength: TYPES.length })
      .chain((types) =>
        fc.record({
          types: fc.constant(types),
          rows: fc.array(fc.tuple(...types.map(valueOf)), { maxLength: 6 }),
          gap: fc.constantFrom(' ', '', '\n\t '),
        }),
      );
    fc.assert(
      fc.property(chunks, ({ types, rows, gap }) => {
        const columns = types.map((_, i) => `c${i}`);
        const expected = rows.map((r) =>
          r.map((v, i) => (v === null ? 'null' : textToJsonFor(types[i]!)(v))),
        );
        expect(scan(pgText(rows, gap), columns, types)).toEqual(expected);
      }),
      { numRuns: 300 },
    );
  });

  it('slices text-like values: the database escapes them as JSON.stringify does', () => {
    const t = 'tab\there "q" back\\slash \u0001 é 😀';
    expect(scan(pgText([[t, '12', null]]), ['a', 'b', 'c'], ['text', 'numeric', 'text'])).toEqual([
      [JSON.stringify(t), '"12"', 'null'],
    ]);
    // a quote after an even run of backslashes ends the string; after an odd one it does not
    expect(scan('[["a\\\\"], ["\\\\\\""]]', ['a'], ['text'])).toEqual([['"a\\\\"'], ['"\\\\\\""']]);
  });

  it('reads an empty chunk and rows of a table without columns', () => {
    expect(scan('[]', ['a'], ['text'])).toEqual([]);
    expect(scan(' [ ] ', ['a'], ['text'])).toEqual([]);
    expect(scan('[[], []]', [], [])).toEqual([[], []]);
  });

  it('refuses text that is not an array of rows of the columns', () => {
    for (const bad of [
      '',
      '{}',
      '[["a"]',
      '[["a", "b"]]',
      '[[]]',
      '[["a"] x]',
      '[[1]]',
      '[["a]]',
      '[["a"]] x',
    ])
      expect(() => scan(bad, ['a'], ['text'])).toThrow(WatermarkError);
  });
});
