import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { DecodeError, type Change, type RowChange } from '../../src/extractor/decode/changes.ts';
import { typed } from '../support/changes.ts';
import {
  createPgoutputDecoder,
  pgoutputTypeName,
  pgTimestampToIso,
} from '../../src/extractor/decode/pgoutput.ts';
import { decodeWal2Json } from '../../src/extractor/decode/wal2json.ts';

/** A tiny pgoutput (protocol v1) encoder: the messages as Postgres' proto.c writes them. */
class Enc {
  private readonly parts: Buffer[] = [];
  char(c: string): this {
    this.parts.push(Buffer.from(c, 'latin1'));
    return this;
  }
  byte(n: number): this {
    this.parts.push(Buffer.from([n]));
    return this;
  }
  int16(n: number): this {
    const b = Buffer.alloc(2);
    b.writeInt16BE(n);
    this.parts.push(b);
    return this;
  }
  int32(n: number): this {
    const b = Buffer.alloc(4);
    b.writeInt32BE(n);
    this.parts.push(b);
    return this;
  }
  uint32(n: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    this.parts.push(b);
    return this;
  }
  int64(n: bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigInt64BE(n);
    this.parts.push(b);
    return this;
  }
  string(s: string): this {
    this.parts.push(Buffer.from(s, 'utf8'), Buffer.from([0]));
    return this;
  }
  raw(b: Buffer): this {
    this.parts.push(b);
    return this;
  }
  /** TupleData: null → 'n', UNCHANGED → 'u', a Buffer → 'b' (binary), a string → 't'. */
  tuple(values: (string | null | typeof UNCHANGED | Buffer)[]): this {
    this.int16(values.length);
    for (const v of values) {
      if (v === null) this.char('n');
      else if (v === UNCHANGED) this.char('u');
      else if (Buffer.isBuffer(v)) this.char('b').int32(v.length).raw(v);
      else {
        const bytes = Buffer.from(v, 'utf8');
        this.char('t').int32(bytes.length).raw(bytes);
      }
    }
    return this;
  }
  get buf(): Buffer {
    return Buffer.concat(this.parts);
  }
}
const UNCHANGED = Symbol('unchanged toast');

const PG_EPOCH_MS = Date.UTC(2000, 0, 1);
/** µs since 2000-01-01 for an ISO time plus extra microseconds. */
const pgTime = (iso: string, micros = 0) => BigInt(Date.parse(iso) - PG_EPOCH_MS) * 1000n + BigInt(micros);

interface Col {
  name: string;
  oid: number;
  key?: boolean;
}
const relation = (oid: number, schema: string, table: string, identity: string, cols: Col[]) => {
  const e = new Enc().char('R').uint32(oid).string(schema).string(table).char(identity).int16(cols.length);
  for (const c of cols)
    e.byte(c.key ? 1 : 0)
      .string(c.name)
      .uint32(c.oid)
      .int32(-1);
  return e.buf;
};
const begin = (finalLsn: bigint, time: bigint, xid: number) =>
  new Enc().char('B').int64(finalLsn).int64(time).uint32(xid).buf;
const commit = (lsn: bigint, endLsn: bigint, time: bigint) =>
  new Enc().char('C').byte(0).int64(lsn).int64(endLsn).int64(time).buf;
const insert = (oid: number, values: Parameters<Enc['tuple']>[0]) =>
  new Enc().char('I').uint32(oid).char('N').tuple(values).buf;

const ITEMS: Col[] = [
  { name: 'id', oid: 20, key: true },
  { name: 'title', oid: 25 },
  { name: 'body', oid: 25 },
  { name: 'n', oid: 23 },
];

/** A decoder that has seen the Relation message for public.items (OID 16400). */
function withItems(identity = 'd') {
  const decode = createPgoutputDecoder();
  expect(
    decode(
      relation(
        16400,
        'public',
        'items',
        identity,
        identity === 'f' ? ITEMS.map((c) => ({ ...c, key: true })) : ITEMS,
      ),
      '0/1',
    ),
  ).toEqual({
    kind: 'noop',
  });
  return decode;
}

function single(c: Change | Change[]): Change {
  expect(Array.isArray(c)).toBe(false);
  return c as Change;
}
function row(c: Change | Change[]): RowChange {
  const ch = typed(single(c));
  if (ch.kind !== 'insert' && ch.kind !== 'update' && ch.kind !== 'delete')
    throw new Error(`not a row change: ${ch.kind}`);
  // every change carries its relation's shape (schema.changed): checked in a test of its own
  const copy = { ...ch };
  delete copy.shape;
  return copy;
}
function decodeError(f: () => unknown): DecodeError {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(DecodeError);
    return err as DecodeError;
  }
  throw new Error('expected a DecodeError');
}

describe('pgoutput v1 decoder', () => {
  it('decodes Begin: commit LSN (final_lsn), commit time with microseconds, xid', () => {
    const decode = createPgoutputDecoder();
    const c = decode(begin(0x1505fc0n, pgTime('2026-11-23T16:21:52Z', 623558), 726), '0/1505F00');
    expect(c).toEqual({
      kind: 'begin',
      xid: 726,
      commitLsn: 0x1505fc0n,
      // pgoutput's Begin has no end LSN: final_lsn is the lower bound; Commit carries the end
      endLsn: 0x1505fc0n,
      commitTime: '2026-11-23T16:21:52.623558+00:00',
    });
    // xid is unsigned 32-bit; LSNs above 2^32 stay exact
    const big = single(decode(begin(0x1_0000_0010n, pgTime('2024-01-02T03:04:05Z'), 3_000_000_000), '1/0'));
    expect(big).toMatchObject({
      xid: 3_000_000_000,
      commitLsn: 0x1_0000_0010n,
      commitTime: '2024-01-02T03:04:05+00:00',
    });
  });

  it('decodes Commit with the commit LSN and end_lsn', () => {
    const c = createPgoutputDecoder()(
      commit(0x1505fc0n, 0x1505ff0n, pgTime('2026-11-23T16:21:52Z')),
      '0/1505FF0',
    );
    expect(c).toEqual({ kind: 'commit', commitLsn: 0x1505fc0n, endLsn: 0x1505ff0n });
  });

  it('writes commit times as Postgres does under TimeZone=UTC (trailing zeros dropped)', () => {
    expect(pgTimestampToIso(0n)).toBe('2000-01-01T00:00:00+00:00');
    expect(pgTimestampToIso(1n)).toBe('2000-01-01T00:00:00.000001+00:00');
    expect(pgTimestampToIso(120_000n)).toBe('2000-01-01T00:00:00.12+00:00');
    expect(pgTimestampToIso(-1n)).toBe('1999-12-31T23:59:59.999999+00:00');
    fc.assert(
      fc.property(fc.bigInt({ min: -(10n ** 16n), max: 10n ** 16n }), (us) => {
        const iso = pgTimestampToIso(us);
        const m = /^(.{19})(?:\.(\d{1,6}))?\+00:00$/.exec(iso);
        expect(m).not.toBeNull();
        const seconds = BigInt(Date.parse(m![1] + 'Z') - PG_EPOCH_MS) * 1000n;
        const micros = BigInt((m![2] ?? '').padEnd(6, '0') || '0');
        expect(seconds + micros).toBe(us);
        expect(m![2]?.endsWith('0') ?? false).toBe(false);
      }),
    );
  });

  it('types values by OID: int8/numeric exact, numbers, bool, json, bytea, timestamps, arrays, NULL', () => {
    const decode = createPgoutputDecoder();
    const cols: [string, number, string | null][] = [
      ['id', 20, '9223372036854775807'],
      ['neg', 20, '-9223372036854775808'],
      ['n', 1700, '12345.67800'],
      ['s', 21, '-32768'],
      ['i', 23, '42'],
      ['f4', 700, '1.5'],
      ['f', 701, '1.5e-07'],
      ['nan', 701, 'NaN'],
      ['b', 16, 't'],
      ['t', 25, 'héllo "value":12345678901234567890 😀'],
      ['vc', 1043, 'varchar'],
      ['j', 114, '{"a": [1, 2], "big": 12345678901234567890}'],
      ['jb', 3802, '{"a": [1, 2]}'],
      ['by', 17, '\\x0102ff'],
      ['ts', 1184, '2024-01-02 03:04:05.123456+00'],
      ['tsn', 1114, '2024-01-02 03:04:05'],
      ['d', 1082, '2024-01-02'],
      ['u', 2950, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'],
      ['arr', 1007, '{1,2,3}'],
      ['big_arr', 1016, '{9223372036854775807,-1}'],
      ['tarr', 1009, '{a,"b c",NULL}'],
      ['barr', 1000, '{t,f}'],
      ['jarr', 3807, '{"{\\"a\\": 1}"}'],
      ['oid', 26, '16400'],
      ['nul', 25, null],
    ];
    decode(
      relation(
        1,
        'public',
        'w',
        'd',
        cols.map(([name, oid], k) => ({ name, oid, key: k === 0 })),
      ),
      '0/1',
    );
    const c = row(
      decode(
        insert(
          1,
          cols.map(([, , v]) => v),
        ),
        '0/10',
      ),
    );
    expect(c).toEqual({
      kind: 'insert',
      lsn: '0/10',
      schema: 'public',
      table: 'w',
      old: null,
      pk: ['id'],
      new: {
        id: '9223372036854775807',
        neg: '-9223372036854775808',
        n: '12345.67800',
        s: -32768,
        i: 42,
        f4: 1.5,
        f: 1.5e-7,
        nan: 'NaN',
        b: true,
        t: 'héllo "value":12345678901234567890 😀',
        vc: 'varchar',
        j: { a: [1, 2], big: JSON.parse('12345678901234567890') as number },
        jb: { a: [1, 2] },
        by: Buffer.from([1, 2, 255]).toString('base64'),
        ts: '2024-01-02T03:04:05.123456+00:00',
        tsn: '2024-01-02T03:04:05',
        d: '2024-01-02',
        u: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
        arr: [1, 2, 3],
        big_arr: ['9223372036854775807', '-1'],
        tarr: ['a', 'b c', null],
        barr: [true, false],
        jarr: [{ a: 1 }],
        oid: 16400,
        nul: null,
      },
    });
  });

  it('gives the same row as the wal2json decoder for the same values', () => {
    // wal2json's form of the same row (bare numbers, bytea without \x, JSON booleans)
    const w = single(
      decodeWal2Json(
        '{"action":"I","lsn":"0/10","schema":"public","table":"w","pk":[{"name":"id","type":"bigint"}],"columns":[' +
          '{"name":"id","type":"bigint","value":9223372036854775807},' +
          '{"name":"n","type":"numeric(20,5)","value":12345.67800},' +
          '{"name":"f","type":"double precision","value":1.5e-07},' +
          '{"name":"b","type":"boolean","value":false},' +
          '{"name":"by","type":"bytea","value":"0102ff"},' +
          '{"name":"ts","type":"timestamp with time zone","value":"2024-01-02 03:04:05.5+00"},' +
          '{"name":"arr","type":"integer[]","value":"{1,NULL}"},' +
          '{"name":"mood","type":"mood","value":"happy"},' +
          '{"name":"moods","type":"mood[]","value":"{happy,sad}"}]}',
        '0/10',
      ),
    );
    const decode = createPgoutputDecoder();
    // user types are announced by Type messages before the Relation that uses them
    expect(decode(new Enc().char('Y').uint32(16500).string('public').string('mood').buf, '0/1')).toEqual({
      kind: 'noop',
    });
    expect(decode(new Enc().char('Y').uint32(16499).string('public').string('_mood').buf, '0/1')).toEqual({
      kind: 'noop',
    });
    const cols: Col[] = [
      { name: 'id', oid: 20, key: true },
      { name: 'n', oid: 1700 },
      { name: 'f', oid: 701 },
      { name: 'b', oid: 16 },
      { name: 'by', oid: 17 },
      { name: 'ts', oid: 1184 },
      { name: 'arr', oid: 1007 },
      { name: 'mood', oid: 16500 },
      { name: 'moods', oid: 16499 },
    ];
    decode(relation(2, 'public', 'w', 'd', cols), '0/2');
    const p = decode(
      insert(2, [
        '9223372036854775807',
        '12345.67800',
        '1.5e-07',
        'f',
        '\\x0102ff',
        '2024-01-02 03:04:05.5+00',
        '{1,NULL}',
        'happy',
        '{happy,sad}',
      ]),
      '0/10',
    );
    // Equal values; the texts may differ in number spelling (1.5e-7 vs 1.5e-07).
    // (the shapes differ in typmods: the test's Relation message gives none)
    expect({ ...typed(p), shape: undefined }).toEqual({ ...typed(w), shape: undefined });
  });

  it('maps type OIDs to names, unknown ones (enums, domains) to text', () => {
    expect(pgoutputTypeName(20)).toBe('int8');
    expect(pgoutputTypeName(1700)).toBe('numeric');
    expect(pgoutputTypeName(1184)).toBe('timestamptz');
    expect(pgoutputTypeName(1007)).toBe('int4[]');
    expect(pgoutputTypeName(1185)).toBe('timestamptz[]');
    expect(pgoutputTypeName(199)).toBe('json[]');
    expect(pgoutputTypeName(987654)).toBe('text');
    expect(pgoutputTypeName(987654, new Map([[987654, 'mood']]))).toBe('text');
    expect(pgoutputTypeName(987655, new Map([[987655, '_mood']]))).toBe('text[]');
  });

  it('marks unchanged TOAST (kind u) and leaves it out of the new row; identity from the new row', () => {
    const decode = withItems('d');
    const u = new Enc().char('U').uint32(16400).char('N').tuple(['7', 'new title', UNCHANGED, '3']).buf;
    expect(row(decode(u, '0/20'))).toEqual({
      kind: 'update',
      lsn: '0/20',
      schema: 'public',
      table: 'items',
      new: { id: '7', title: 'new title', n: 3 },
      // no old tuple: the key did not change; wal2json reports the identity from the new row
      old: { id: '7' },
      pk: ['id'],
      unchangedToast: ['body'],
    });
  });

  it('keeps only the key columns of a K tuple (update changing the key, delete)', () => {
    const decode = withItems('d');
    const u = new Enc()
      .char('U')
      .uint32(16400)
      .char('K')
      .tuple(['7', null, null, null])
      .char('N')
      .tuple(['8', 't', 'b', '1']).buf;
    expect(row(decode(u, '0/30'))).toMatchObject({
      kind: 'update',
      old: { id: '7' },
      new: { id: '8', title: 't', body: 'b', n: 1 },
    });
    const d = new Enc().char('D').uint32(16400).char('K').tuple(['8', null, null, null]).buf;
    expect(row(decode(d, '0/40'))).toEqual({
      kind: 'delete',
      lsn: '0/40',
      schema: 'public',
      table: 'items',
      new: null,
      old: { id: '8' },
      pk: ['id'],
    });
  });

  it('decodes O tuples (REPLICA IDENTITY FULL): the whole old row, pk left to the catalog', () => {
    const decode = withItems('f');
    const u = new Enc()
      .char('U')
      .uint32(16400)
      .char('O')
      .tuple(['7', 'old title', 'long body', null])
      .char('N')
      .tuple(['7', 'new title', UNCHANGED, '5']).buf;
    const c = row(decode(u, '0/50'));
    expect(c).toEqual({
      kind: 'update',
      lsn: '0/50',
      schema: 'public',
      table: 'items',
      new: { id: '7', title: 'new title', n: 5 },
      old: { id: '7', title: 'old title', body: 'long body', n: null },
      unchangedToast: ['body'],
    });
    expect(c.pk).toBeUndefined();
    const d = new Enc().char('D').uint32(16400).char('O').tuple(['7', 'new title', 'long body', '5']).buf;
    expect(row(decode(d, '0/60'))).toMatchObject({
      kind: 'delete',
      new: null,
      old: { id: '7', title: 'new title', body: 'long body', n: 5 },
    });
  });

  it('reuses the values of the old tuple that the new one repeats byte for byte, and only those (property)', () => {
    const decode = withItems('f');
    const text = fc.oneof(fc.constantFrom('queued', 'runnin', 'x'.repeat(40), 'y'.repeat(40)), fc.string());
    const value = fc.oneof(text, fc.constant(null));
    const n = fc.oneof(fc.constantFrom('5', '6', '05'), fc.constant(null));
    fc.assert(
      fc.property(
        fc.tuple(fc.constantFrom('7', '8'), value, value, n),
        fc.tuple(fc.constantFrom('7', '8'), value, fc.oneof(value, fc.constant(UNCHANGED)), n),
        (before, after) => {
          const u = new Enc().char('U').uint32(16400).char('O').tuple(before).char('N').tuple(after).buf;
          // the same tuples decoded on their own (an Insert each) are the reference
          const alone = (t: typeof after) =>
            row(decode(new Enc().char('I').uint32(16400).char('N').tuple(t).buf, '0/9')).new!;
          const c = row(decode(u, '0/50'));
          expect(c.old).toEqual(alone(before));
          expect(c.new).toEqual(alone(after));
          expect(c.unchangedToast ?? []).toEqual(after[2] === UNCHANGED ? ['body'] : []);
        },
      ),
    );
  });

  it('yields one truncate per table of a multi-table Truncate, in order', () => {
    const decode = withItems();
    decode(relation(16401, 'audit', 'log', 'd', [{ name: 'id', oid: 23, key: true }]), '0/1');
    const t = new Enc()
      .char('T')
      .uint32(2)
      .byte(1 | 2)
      .uint32(16401)
      .uint32(16400).buf;
    expect(decode(t, '0/70')).toEqual([
      { kind: 'truncate', lsn: '0/70', schema: 'audit', table: 'log' },
      { kind: 'truncate', lsn: '0/70', schema: 'public', table: 'items' },
    ]);
  });

  it('decodes logical messages (transactional or not) with their own LSN', () => {
    const decode = createPgoutputDecoder();
    const content = Buffer.from('héllo\u0000 world', 'utf8');
    const m = new Enc()
      .char('M')
      .byte(1)
      .int64(0x80n)
      .string('my-prefix')
      .int32(content.length)
      .raw(content).buf;
    expect(decode(m, '0/80')).toEqual({
      kind: 'message',
      lsn: 0x80n,
      transactional: true,
      prefix: 'my-prefix',
      content: 'héllo\u0000 world',
    });
    const n = new Enc().char('M').byte(0).int64(0x90n).string('').int32(0).buf;
    expect(decode(n, '0/90')).toEqual({
      kind: 'message',
      lsn: 0x90n,
      transactional: false,
      prefix: '',
      content: '',
    });
  });

  it('answers Relation, Type and Origin with noop; a new Relation message replaces the old shape', () => {
    const decode = withItems();
    expect(decode(new Enc().char('O').int64(0x123n).string('origin-1').buf, '0/1')).toEqual({ kind: 'noop' });
    // ALTER TABLE items ADD COLUMN extra jsonb: Postgres sends the Relation again before the next change
    decode(relation(16400, 'public', 'items', 'd', [...ITEMS, { name: 'extra', oid: 3802 }]), '0/2');
    expect(row(decode(insert(16400, ['1', 't', 'b', '2', '{"k": true}']), '0/3')).new).toEqual({
      id: '1',
      title: 't',
      body: 'b',
      n: 2,
      extra: { k: true },
    });
    // pg_catalog is sent as an empty namespace
    decode(relation(5, '', 'pg_thing', 'n', [{ name: 'x', oid: 25 }]), '0/4');
    expect(row(decode(insert(5, ['x']), '0/5'))).toMatchObject({ schema: 'pg_catalog', table: 'pg_thing' });
  });

  describe('errors carry the LSN and never skip silently', () => {
    it('unknown message type', () => {
      const e = decodeError(() => createPgoutputDecoder()(Buffer.from('Zabc'), '0/ABC'));
      expect(e.lsn).toBe('0/ABC');
      expect(e.message).toContain('0/ABC');
      expect(e.message).toContain('unknown message type "Z"');
    });

    it('a change for a relation no Relation message described', () => {
      const e = decodeError(() => createPgoutputDecoder()(insert(999, ['1']), '0/DEF'));
      expect(e.lsn).toBe('0/DEF');
      expect(e.message).toMatch(/relation OID 999/);
      const t = decodeError(() =>
        withItems()(new Enc().char('T').uint32(2).byte(0).uint32(16400).uint32(998).buf, '0/DF0'),
      );
      expect(t.message).toMatch(/relation OID 998/);
    });

    it('name the LSN, table, column and byte offset, never a value', () => {
      const secret = 'hunter2-card-4111111111111111';
      const full = insert(16400, ['1', secret, 'b', '2']);
      // Cut inside the value of column title: the message names where, not what.
      const e = decodeError(() => withItems()(full.subarray(0, full.length - 12 - 6), '0/200'));
      expect(e.message).toMatch(/LSN 0\/200/);
      expect(e.message).toMatch(/column \w+ of public\.items/);
      expect(e.message).toMatch(/offset \d+/);
      for (let n = 4; n <= secret.length; n++) expect(e.message).not.toContain(secret.slice(0, n));
    });

    it('binary tuple values (never requested)', () => {
      const e = decodeError(() => withItems()(insert(16400, ['1', Buffer.from([1]), null, null]), '1/2345'));
      expect(e.lsn).toBe('1/2345');
      expect(e.message).toMatch(/binary value for column title/);
    });

    it('truncated messages, trailing bytes, wrong column counts, unknown column kinds', () => {
      const decode = withItems();
      const full = insert(16400, ['1', 't', 'b', '2']);
      for (let cut = 1; cut < full.length; cut++) {
        const e = decodeError(() => decode(full.subarray(0, cut), '0/100'));
        expect(e.lsn).toBe('0/100');
      }
      expect(decodeError(() => decode(Buffer.concat([full, Buffer.from([0])]), '0/101')).message).toMatch(
        /trailing/,
      );
      expect(decodeError(() => decode(insert(16400, ['1', 't']), '0/102')).message).toMatch(/has 2 columns/);
      const bad = Buffer.from(full);
      bad[1 + 4 + 1 + 2] = 'x'.charCodeAt(0);
      expect(decodeError(() => decode(bad, '0/103')).message).toMatch(/unknown tuple column kind "x"/);
      expect(decodeError(() => decode(Buffer.alloc(0), '0/104')).message).toMatch(/message type/);
      expect(
        decodeError(() =>
          decode(new Enc().char('D').uint32(16400).char('N').tuple(['1', null, null, null]).buf, '0/105'),
        ).message,
      ).toMatch(/Delete without an old tuple/);
    });

    it('fuzzed bytes either decode or fail with a DecodeError (never another exception)', () => {
      fc.assert(
        fc.property(
          fc.uint8Array({ maxLength: 64 }),
          fc.constantFrom('B', 'C', 'R', 'Y', 'O', 'I', 'U', 'D', 'T', 'M'),
          (bytes, type) => {
            const decode = withItems();
            try {
              decode(Buffer.concat([Buffer.from(type), Buffer.from(bytes)]), '0/1');
            } catch (err) {
              expect(err).toBeInstanceOf(DecodeError);
            }
          },
        ),
      );
    });
  });
});
