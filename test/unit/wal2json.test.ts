import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { DecodeError, type RowChange } from '../../src/extractor/decode/changes.ts';
import { decodeWal2Json as decodeText } from '../../src/extractor/decode/wal2json.ts';
import { typed } from '../support/changes.ts';

const decodeWal2Json = (text: string, lsn: string) => typed(decodeText(text, lsn));

const col = (name: string, type: string, value: string) =>
  `{"name":"${name}","type":"${type}","value":${value}}`;

describe('wal2json v2 decoder', () => {
  it('decodes BEGIN with the commit LSN and end LSN', () => {
    const c = decodeWal2Json(
      '{"action":"B","xid":726,"timestamp":"2026-11-23 16:21:52.623558+00","lsn":"0/1505FC0","nextlsn":"0/1505FF0"}',
      '0/1',
    );
    expect(c).toEqual({
      kind: 'begin',
      xid: 726,
      commitLsn: 0x1505fc0n,
      endLsn: 0x1505ff0n,
      commitTime: '2026-11-23T16:21:52.623558+00:00',
    });
  });

  it('keeps int8 and numeric exact and types the rest', () => {
    const msg = `{"action":"I","xid":1,"lsn":"0/10","schema":"public","table":"w","pk":[{"name":"id","type":"bigint"}],"columns":[${[
      col('id', 'bigint', '9223372036854775807'),
      col('neg', 'bigint', '-9223372036854775808'),
      col('n', 'numeric(20,5)', '12345.67800'),
      col('i', 'integer', '42'),
      col('f', 'double precision', '1.5e-7'),
      col('nan', 'double precision', '"NaN"'),
      col('b', 'boolean', 'true'),
      col('t', 'text', '"héllo \\"value\\":12345678901234567890"'),
      col('j', 'jsonb', '"{\\"a\\": [1, 2]}"'),
      col('by', 'bytea', '"0102ff"'),
      col('ts', 'timestamp with time zone', '"2024-01-02 03:04:05.123456+05:30"'),
      col('tsn', 'timestamp without time zone', '"2024-01-02 03:04:05"'),
      col('arr', 'integer[]', '"{1,2,3}"'),
      col('tarr', 'text[]', '"{a,\\"b c\\",NULL}"'),
      col('nul', 'text', 'null'),
    ].join(',')}]}`;
    const c = decodeWal2Json(msg, '0/10');
    expect(c.kind).toBe('insert');
    if (c.kind !== 'insert') return;
    expect(c.pk).toEqual(['id']);
    expect(c.new).toEqual({
      id: '9223372036854775807',
      neg: '-9223372036854775808',
      n: '12345.67800',
      i: 42,
      f: 1.5e-7,
      nan: 'NaN',
      b: true,
      t: 'héllo "value":12345678901234567890',
      j: { a: [1, 2] },
      by: Buffer.from([1, 2, 255]).toString('base64'),
      ts: '2024-01-02T03:04:05.123456+05:30',
      tsn: '2024-01-02T03:04:05',
      arr: [1, 2, 3],
      tarr: ['a', 'b c', null],
      nul: null,
    });
  });

  it('decodes every int8 exactly (property)', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }), (n) => {
        const c = decodeWal2Json(
          `{"action":"I","lsn":"0/1","schema":"s","table":"t","columns":[${col('v', 'bigint', n.toString())}]}`,
          '0/1',
        );
        return c.kind === 'insert' && (c.new as unknown as Record<string, unknown>).v === n.toString();
      }),
    );
  });

  it('never rewrites string contents (property)', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        const c = decodeWal2Json(
          `{"action":"I","lsn":"0/1","schema":"s","table":"t","columns":[${col('v', 'text', JSON.stringify(s))}]}`,
          '0/1',
        );
        return c.kind === 'insert' && (c.new as unknown as Record<string, unknown>).v === s;
      }),
    );
  });

  it('gives updates their identity as the old row and deletes no new row', () => {
    const u = decodeWal2Json(
      `{"action":"U","lsn":"0/2","schema":"public","table":"t","columns":[${col('id', 'integer', '1')}],"identity":[${col('id', 'integer', '1')},${col('big', 'text', '"x"')}]}`,
      '0/2',
    );
    expect(u).toMatchObject({ kind: 'update', new: { id: 1 }, old: { id: 1, big: 'x' } });
    const d = decodeWal2Json(
      `{"action":"D","lsn":"0/3","schema":"public","table":"t","identity":[${col('id', 'integer', '1')}]}`,
      '0/3',
    );
    expect(d).toMatchObject({ kind: 'delete', new: null, old: { id: 1 } });
  });

  it('decodes truncate, messages and commit', () => {
    expect(decodeWal2Json('{"action":"T","lsn":"0/4","schema":"public","table":"t"}', '0/4')).toMatchObject({
      kind: 'truncate',
      table: 't',
    });
    expect(
      decodeWal2Json('{"action":"M","lsn":"0/5","transactional":false,"prefix":"p","content":"c"}', '0/5'),
    ).toMatchObject({
      kind: 'message',
      prefix: 'p',
    });
    expect(decodeWal2Json('{"action":"C","lsn":"0/6","nextlsn":"0/7"}', '0/6')).toEqual({
      kind: 'commit',
      commitLsn: 6n,
      endLsn: 7n,
    });
  });

  it('reports undecodable input with its LSN', () => {
    expect(() => decodeWal2Json('{"action":"I",', '0/ABC')).toThrow(DecodeError);
    // A decode error names the LSN, table, column and byte offset, never a value.
    const secret = 'hunter2-card-4111111111111111';
    for (const bad of [
      `{"action":"I","lsn":"0/1","schema":"public","table":"users","columns":[{"name":"id","type":"integer","value":1},{"name":"card","type":"text","value":"${secret}`,
      `{"action":"I","lsn":"0/1","schema":"public","table":"users","columns":[{"name":"card","type":"integer","value":${secret}}]}`,
      `{"action":"${secret}"}`,
    ]) {
      let message = '';
      try {
        decodeWal2Json(bad, '0/ABC');
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).toMatch(/LSN 0\/ABC/);
      for (let n = 6; n <= secret.length; n++) expect(message).not.toContain(secret.slice(0, n));
      if (!bad.startsWith('{"action":"hunter'))
        expect(message).toMatch(
          /table public\.users, column card.*|offset \d+.*table public\.users, column card/,
        );
    }
    expect(() => decodeWal2Json('{"action":"X"}', '0/ABC')).toThrow(/LSN 0\/ABC/);
    expect(() => decodeWal2Json('{"action":"B","lsn":"0/1"}', '0/ABC')).toThrow(/include-/);
  });
});

describe('wal2json scanner edge cases', () => {
  const msg = (cols: string, extra = '') =>
    `{"action":"I","xid":1,"timestamp":"2026-01-01 00:00:00+00","lsn":"0/1","schema":"s","table":"t","columns":[${cols}]${extra}}`;

  it('reads any member order, extra members and whitespace the same as the printed shape', () => {
    const printed = decodeWal2Json(msg(col('a', 'bigint', '12345678901234567890')), '0/1');
    const reordered = decodeWal2Json(
      `{ "table" : "t", "lsn":"0/1", "columns" : [ { "value" : 12345678901234567890 , "typeoid": 20, "type":"bigint", "name":"a" } ] , "schema":"s", "origin": {"x": [1, "]"]}, "action":"I" }`,
      '0/1',
    );
    expect(reordered).toEqual(printed);
    expect(printed).toMatchObject({ kind: 'insert', new: { a: '12345678901234567890' } });
  });

  it('keeps strings with escapes, quotes, brackets and unicode exact (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'binary' }), { minLength: 1, maxLength: 5 }), (values) => {
        const cols = values.map((v, i) => col(`c${i}`, 'text', JSON.stringify(v))).join(',');
        const c = decodeWal2Json(msg(cols), '0/1');
        if (c.kind !== 'insert') return false;
        const row = c.new as unknown as Record<string, unknown>;
        return values.every((v, i) => row[`c${i}`] === v);
      }),
    );
  });

  it('gives an update the rows its columns and identity give alone, whatever they share (property)', () => {
    // column, type, token: the same value may come again in the identity, a column may be missing
    // from `columns` (unchanged TOAST) and shift the others, names may repeat across the rows
    const value = fc.constantFrom(
      ['j', 'jsonb', JSON.stringify('{"a": 1}')],
      ['j', 'jsonb', JSON.stringify('{"a": 2}')],
      ['t', 'text[]', JSON.stringify('{a,"b \\"c\\""}')],
      ['t', 'text[]', JSON.stringify('{a}')],
      ['n', 'numeric(14,4)', '1.5000'],
      ['n', 'numeric(14,4)', 'null'],
      ['b', 'bytea', '"0a0b"'],
      ['x', 'text', '"0a0b"'],
      ['y', 'text', JSON.stringify('{"a": 1}')],
      ['s', 'timestamp with time zone', '"2026-01-01 00:00:00.5+00"'],
      ['s', 'timestamp with time zone', '"2026-01-01 00:00:01+00"'],
    );
    const cols = (xs: readonly (readonly string[])[]) =>
      xs.map(([name, type, token]) => col(name!, type!, token!)).join(',');
    // rows as JSON text (not typed: every byte counts, and names may repeat)
    const rowOf = (xs: readonly (readonly string[])[]) => (decodeText(msg(cols(xs)), '0/1') as RowChange).new;
    fc.assert(
      fc.property(fc.array(value, { maxLength: 6 }), fc.array(value, { maxLength: 6 }), (after, before) => {
        const u = decodeText(
          `{"action":"U","lsn":"0/2","schema":"s","table":"t","columns":[${cols(after)}],"identity":[${cols(before)}]}`,
          '0/2',
        ) as RowChange;
        expect(u.new).toEqual(rowOf(after));
        expect(u.old).toEqual(rowOf(before));
      }),
    );
  });

  it('decodes column names that need escaping, and finds them by name', () => {
    const c = decodeText(msg(`{"name":"we\\"ird\\\\name","type":"integer","value":7}`), '0/1');
    expect(typed(c)).toMatchObject({ new: { 'we"ird\\name': 7 } });
  });

  it('rejects malformed literals and structure with the LSN', () => {
    for (const bad of [
      msg(col('a', 'integer', '01')),
      msg(col('a', 'integer', '1.')),
      msg(col('a', 'integer', 'nul')),
      msg(col('a', 'integer', '1e')),
      msg(col('a', 'text', '"open')),
      msg(col('a', 'integer', '1')) + ' x',
      msg(`{"name":"a","type":"integer"}`),
    ])
      expect(() => decodeText(bad, '0/9')).toThrow(/LSN 0\/9/);
  });

  it('splices jsonb text in as JSON, keeping large numbers exact', () => {
    const c = decodeText(
      msg(col('j', 'jsonb', JSON.stringify('{"n": 12345678901234567890, "s": "a\\nb"}'))),
      '0/1',
    );
    if (c.kind !== 'insert') throw new Error(c.kind);
    expect(c.new!.values[0]).toBe('{"n": 12345678901234567890, "s": "a\\nb"}');
    expect(typed(c)).toMatchObject({ new: { j: { s: 'a\nb' } } });
  });
});
