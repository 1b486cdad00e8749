import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { pgoutputTypeName } from '../../src/extractor/decode/pgoutput.ts';
import { textToJsonFor } from '../../src/extractor/decode/value-json.ts';
import { converterFor } from '../../src/extractor/decode/values.ts';

/** The generic path the spliced one replaces: the typed value, then JSON.stringify. */
const generic = (type: string, text: string) => JSON.stringify(converterFor(type)(text)) ?? 'null';

/** Postgres-like text forms per type, and arbitrary text (the splice must agree on any input). */
const pad = (n: number, w = 2) => String(n).padStart(w, '0');
const timestampText = fc
  .record({
    y: fc.integer({ min: 1, max: 9999 }),
    mo: fc.integer({ min: 1, max: 12 }),
    d: fc.integer({ min: 1, max: 28 }),
    h: fc.integer({ min: 0, max: 23 }),
    mi: fc.integer({ min: 0, max: 59 }),
    s: fc.integer({ min: 0, max: 59 }),
    us: fc.option(fc.integer({ min: 1, max: 999_999 })),
    tz: fc.constantFrom('+00', '-05', '+05:30', '+01', ''),
    bc: fc.boolean(),
  })
  .map(
    (t) =>
      `${pad(t.y, 4)}-${pad(t.mo)}-${pad(t.d)} ${pad(t.h)}:${pad(t.mi)}:${pad(t.s)}` +
      `${t.us ? '.' + pad(t.us, 6).replace(/0+$/, '') : ''}${t.tz}${t.bc ? ' BC' : ''}`,
  );
const anyText = fc.string({ unit: 'binary', maxLength: 40 });
const numberText = fc.oneof(
  fc.integer().map(String),
  fc.double().map(String),
  fc.double().map((d) => d.toExponential()),
  fc.double({ min: -1e6, max: 1e6 }).map((d) => d.toFixed(6)),
  fc.constantFrom(
    '-0',
    '0',
    '007',
    '1.50',
    '0.0000001',
    '0.000001',
    '1e+30',
    '1e-05',
    'NaN',
    'Infinity',
    '-Infinity',
  ),
  fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }).map(String),
  fc.stringMatching(/^-?\d{1,20}(\.\d{1,20})?$/),
);
/** jsonb as Postgres prints it: `, ` and `: ` between members. */
const jsonbText = fc
  .jsonValue()
  .map((v) => JSON.stringify(v))
  .map((s) =>
    JSON.stringify(JSON.parse(s), null, 1)
      .replace(/\n\s*/g, ' ')
      .replace(/([[{]) /g, '$1')
      .replace(/ ([\]}])/g, '$1'),
  );
const byteaText = fc.uint8Array({ maxLength: 64 }).map((b) => '\\x' + Buffer.from(b).toString('hex'));
const arrayText = fc
  .array(fc.option(fc.string({ maxLength: 8 })), { maxLength: 5 })
  .map(
    (xs) =>
      '{' + xs.map((x) => (x === null ? 'NULL' : '"' + x.replace(/["\\]/g, '\\$&') + '"')).join(',') + '}',
  );

/** Every built-in type the pgoutput decoder maps (by OID), with the texts to try. */
const TYPES: [string, fc.Arbitrary<string>][] = [
  ...['int2', 'int4', 'oid', 'xid', 'int8', 'numeric', 'money'].map((t): [string, fc.Arbitrary<string>] => [
    t,
    fc.oneof(numberText, anyText),
  ]),
  ...['float4', 'float8'].map((t): [string, fc.Arbitrary<string>] => [t, fc.oneof(numberText, anyText)]),
  ['bool', fc.oneof(fc.constantFrom('t', 'f'), anyText)],
  ['bytea', byteaText],
  ['timestamptz', fc.oneof(timestampText, fc.constantFrom('infinity', '-infinity'), anyText)],
  ['timestamp', fc.oneof(timestampText, fc.constantFrom('infinity', '-infinity'), anyText)],
  ['json', fc.oneof(jsonbText, fc.constant('{"a" :\n 1, "a": 2}'), anyText)],
  ...[
    'text',
    'varchar',
    'bpchar',
    'name',
    '"char"',
    'uuid',
    'date',
    'time',
    'timetz',
    'interval',
    'inet',
    'cidr',
    'macaddr',
    'bit',
    'varbit',
    'xml',
    'pg_lsn',
  ].map((t): [string, fc.Arbitrary<string>] => [t, anyText]),
  ...['text[]', 'int4[]', 'int8[]', 'numeric[]', 'jsonb[]', 'bool[]', 'timestamptz[]', 'bytea[]'].map(
    (t): [string, fc.Arbitrary<string>] => [t, fc.oneof(arrayText, anyText)],
  ),
];

describe('textToJsonFor: pgoutput values spliced as JSON text', () => {
  for (const [type, texts] of TYPES) {
    it(`gives the generic path's JSON for ${type}`, () => {
      const toJson = textToJsonFor(type);
      fc.assert(fc.property(texts, (text) => expect(toJson(text)).toBe(generic(type, text))));
    });
  }

  it('splices jsonb text as it is: equal as JSON to the generic path, numbers beyond 2^53 exact', () => {
    const toJson = textToJsonFor('jsonb');
    fc.assert(
      fc.property(jsonbText, (text) => {
        expect(toJson(text)).toBe(text);
        expect(JSON.parse(toJson(text))).toEqual(JSON.parse(generic('jsonb', text)));
      }),
    );
    expect(toJson('{"n": 9007199254740993}')).toBe('{"n": 9007199254740993}');
    // not one line (never printed by Postgres): the checked path
    expect(toJson('{"a":\n1}')).toBe('{"a":1}');
  });

  it('covers every type name the decoder gives a built-in OID', () => {
    const names = new Set(TYPES.map(([t]) => t));
    for (const oid of [16, 17, 20, 21, 23, 25, 26, 114, 700, 701, 1043, 1114, 1184, 1700, 2950, 3802])
      expect(names.has(pgoutputTypeName(oid)) || pgoutputTypeName(oid) === 'jsonb').toBe(true);
  });
});
