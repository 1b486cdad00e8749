import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import type { CloudEvent } from '../../src/events/envelope.ts';
import { ConnectorError } from '../../src/errors.ts';
import { asPacked } from '../../src/sinks/batch.ts';
import { AVRO_CONTENT_TYPE, toAvroWireBatch } from '../../src/sinks/kafka/avro-batch.ts';
import { packed } from '../../src/sinks/kafka/wire-batch.ts';
import { makeEvents } from '../support/events.ts';
import {
  AvroEventEncoder,
  avroFieldNames,
  avroName,
  avroTableSchema,
  avroType,
  avroValueType,
  AvroShapeError,
  frame,
  SchemaIncompatibleError,
  unframe,
  type AvroColumn,
  type SchemaRegistryClient,
} from '../../src/sinks/avro/index.ts';

const col = (name: string, type: string, notNull = false, mask?: string): AvroColumn => ({
  name,
  type,
  notNull,
  ...(mask ? { mask } : {}),
});

/** Every column type family the mapper gives a distinct JSON form (extractor/values.ts). */
const COLUMNS: AvroColumn[] = [
  col('id', 'integer', true),
  col('small', 'smallint'),
  col('big', 'bigint'),
  col('oid_col', 'oid'),
  col('r', 'real'),
  col('d', 'double precision'),
  col('flag', 'boolean'),
  col('doc', 'jsonb'),
  col('j', 'json'),
  col('blob', 'bytea'),
  col('uid', 'uuid'),
  col('amount', 'numeric(10,2)'),
  col('name', 'character varying(20)'),
  col('at', 'timestamp(3) with time zone'),
  col('day', 'date'),
  col('tags', 'text[]'),
  col('nums', 'integer[]'),
];

function event(data: Record<string, unknown>, extra: Partial<CloudEvent> = {}): CloudEvent {
  return {
    specversion: '1.0',
    id: '0/1000/0',
    source: '/tag-connector/db/slot',
    type: 'row.insert',
    subject: 'public.t/1',
    time: '2026-12-06T00:00:00.000000+00:00',
    datacontenttype: 'application/json',
    lsn: '0/FF0',
    commitlsn: '0/1000',
    xid: 731,
    partitionkey: '1',
    data: { op: 'c', schema: 'public', table: 't', before: null, after: null, ...data } as CloudEvent['data'],
    ...extra,
  };
}

describe('avroValueType', () => {
  it.each([
    ['smallint', 'int'],
    ['integer', 'int'],
    ['int4', 'int'],
    ['bigint', 'long'],
    ['int8', 'long'],
    ['oid', 'long'],
    ['xid', 'long'],
    ['real', 'double'],
    ['double precision', 'double'],
    ['boolean', 'boolean'],
    ['bytea', 'bytes'],
    ['numeric(20,5)', 'string'],
    ['text', 'string'],
    ['character varying(20)', 'string'],
    ['timestamp with time zone', 'string'],
    ['timestamp(3) without time zone', 'string'],
    ['date', 'string'],
    ['interval', 'string'],
  ])('%s is %s', (pg, avro) => {
    expect(avroValueType(pg).schema).toBe(avro);
  });

  it('json and jsonb are their JSON text, uuid a uuid string, arrays arrays of nullable items', () => {
    expect(avroValueType('jsonb').schema).toEqual({ type: 'string', 'tag_connector.json': true });
    expect(avroValueType('jsonb').convert({ a: [1, '2'] })).toBe('{"a":[1,"2"]}');
    expect(avroValueType('uuid').schema).toEqual({ type: 'string', logicalType: 'uuid' });
    expect(avroValueType('integer[]').schema).toEqual({ type: 'array', items: ['null', 'int'] });
    expect(avroValueType('bigint[]').convert(['1', null, '-9223372036854775808'])).toEqual([
      1n,
      null,
      -9223372036854775808n,
    ]);
  });

  it('converts the forms events carry, and refuses what does not fit', () => {
    expect(avroValueType('bigint').convert('9223372036854775807')).toBe(9223372036854775807n);
    expect(avroValueType('double precision').convert('NaN')).toBeNaN();
    expect(avroValueType('real').convert('-Infinity')).toBe(-Infinity);
    expect(avroValueType('bytea').convert('AQI=')).toEqual(Buffer.from([1, 2]));
    expect(() => avroValueType('bigint').convert('9223372036854775808')).toThrow(/64-bit/);
    expect(() => avroValueType('integer').convert(2 ** 31)).toThrow(/32-bit/);
    expect(() => avroValueType('integer[]').convert([[1], [2]])).toThrow(/multi-dimensional/);
    expect(() => avroValueType('text').convert(5)).toThrow(/not a string/);
  });
});

describe('avroName', () => {
  it('keeps valid names and makes others valid and distinct', () => {
    expect(avroName('email')).toBe('email');
    expect(avroName('First Name')).toBe('First_Name');
    expect(avroName('1st')).toBe('_1st');
    expect(avroFieldNames(['a-b', 'a_b', 'a b'])).toEqual(['a_b', 'a_b_2', 'a_b_3']);
  });

  it('always gives a valid Avro name', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ minLength: 1 }), { minLength: 1, maxLength: 8 }), (names) => {
        const fields = avroFieldNames(names);
        expect(new Set(fields).size).toBe(fields.length);
        for (const f of fields) expect(f).toMatch(/^[A-Za-z_][A-Za-z0-9_]*$/);
      }),
    );
  });
});

describe('avroTableSchema', () => {
  const t = avroTableSchema('public.t', COLUMNS);
  const type = avroType(t.schema);
  const rowFields = () => {
    const data = (
      t.schema.fields as { name: string; type: { fields: { name: string; type: unknown }[] } }[]
    )[10]!;
    const before = data.type.fields[3]!.type as [string, { fields: Record<string, unknown>[] }];
    return before[1].fields;
  };

  it('is a valid Avro schema named after the table', () => {
    expect(type.name).toBe('tag_connector.public.t.Event');
  });

  it('makes every column nullable (rows may leave columns out), noting NOT NULL and the Postgres type', () => {
    const fields = rowFields();
    expect(fields.map((f) => f.name)).toEqual(COLUMNS.map((c) => c.name));
    for (const f of fields) {
      expect((f.type as unknown[])[0]).toBe('null');
      expect(f.default).toBeNull();
    }
    expect(fields[0]).toMatchObject({ 'tag_connector.not_null': true, 'tag_connector.pg_type': 'integer' });
    expect(fields[1]).toMatchObject({ 'tag_connector.not_null': false });
  });

  it('round-trips an insert with every type to exactly the expected values', () => {
    const after = {
      id: 1,
      small: -3,
      big: '9007199254740993',
      oid_col: 4294967295,
      r: 1.5,
      d: 'Infinity',
      flag: true,
      doc: { a: 1, b: [null, 'x'] },
      j: 'plain',
      blob: 'AQL/',
      uid: '0e4b5f7c-1a2b-4c3d-8e9f-001122334455',
      amount: '12.50',
      name: 'Zoë',
      at: '2026-12-06T01:02:03.123+00:00',
      day: '2026-12-06',
      tags: ['a', null, 'b'],
      nums: [1, 2],
    };
    const e = event({ after });
    const decoded = type.fromBuffer(type.toBuffer(t.toRecord(e))) as Record<string, unknown>;
    expect(decoded).toMatchObject({
      id: '0/1000/0',
      subject: 'public.t/1',
      xid: 731n,
      data: {
        op: 'c',
        before: null,
        changed: null,
        after: {
          ...after,
          big: 9007199254740993n,
          oid_col: 4294967295n,
          d: Infinity,
          doc: '{"a":1,"b":[null,"x"]}',
          j: '"plain"',
          blob: Buffer.from('AQL/', 'base64'),
        },
      },
    });
  });

  it('writes nulls and left-out columns as null, and an update with changed/unchanged_toast', () => {
    const e = event({
      op: 'u',
      before: { id: 1 },
      after: { id: 1, name: null },
      changed: ['name'],
      unchanged_toast: ['doc'],
    });
    const d = (type.fromBuffer(type.toBuffer(t.toRecord(e))) as { data: Record<string, unknown> }).data;
    expect((d.before as Record<string, unknown>).id).toBe(1);
    expect((d.before as Record<string, unknown>).name).toBeNull();
    expect((d.after as Record<string, unknown>).doc).toBeNull();
    expect(d.changed).toEqual(['name']);
    expect(d.unchanged_toast).toEqual(['doc']);
  });

  it('carries role events’ extra members as JSON text', () => {
    const e = event(
      { op: 'u', after: { id: 2 }, from: 'queued', to: 'done' },
      { type: 'task.status_changed' },
    );
    const d = (type.fromBuffer(type.toBuffer(t.toRecord(e))) as { data: Record<string, unknown> }).data;
    expect(d).toMatchObject({ from: '"queued"', to: '"done"', event: null });
  });

  it('refuses a column it does not have, naming the column and not the value', () => {
    const e = event({ after: { id: 1, secret_new: 'hunter2' } });
    expect(() => t.toRecord(e)).toThrow(AvroShapeError);
    expect(() => t.toRecord(e)).toThrow(/public\.t: column "secret_new" of after is not in the schema/);
    try {
      t.toRecord(e);
    } catch (err) {
      expect((err as Error).message).not.toContain('hunter2');
    }
    expect(() => t.toRecord(event({ after: { id: 'x1' } }))).toThrow(
      /column "id" of after: not a 32-bit integer/,
    );
  });

  it('types masked columns as strings', () => {
    const masked = avroTableSchema('public.t', [
      col('id', 'integer', true),
      col('ssn', 'bigint', false, 'redact'),
    ]);
    const row = (
      (masked.schema.fields as { type: { fields: { type: unknown[] }[] } }[])[10]!.type.fields[3]!
        .type as unknown[]
    )[1] as { fields: Record<string, unknown>[] };
    expect(row.fields[1]).toMatchObject({ type: ['null', 'string'], 'tag_connector.mask': 'redact' });
  });

  it('gives a changed table a new schema: an added column is a compatible version, a retyped one not', () => {
    const v1 = avroTableSchema('public.t', [col('id', 'integer', true), col('name', 'text')]);
    const v2 = avroTableSchema('public.t', [
      col('id', 'integer', true),
      col('name', 'text'),
      col('n', 'bigint'),
    ]);
    const v3 = avroTableSchema('public.t', [col('id', 'integer', true), col('name', 'integer')]);
    expect(JSON.stringify(v2.schema)).not.toBe(JSON.stringify(v1.schema));
    // BACKWARD: readers of the new version read data written with the old one
    const old = avroType(v1.schema);
    const newer = avroType(v2.schema);
    const resolver = newer.createResolver(old);
    const written = old.toBuffer(v1.toRecord(event({ after: { id: 1, name: 'a' } })));
    const read = newer.fromBuffer(written, resolver) as {
      data: { after: Record<string, unknown> };
    };
    expect(read.data.after).toMatchObject({ id: 1, name: 'a', n: null });
    expect(() => avroType(v3.schema).createResolver(old)).toThrow();
  });
});

describe('Confluent wire format', () => {
  it('is magic byte 0, the id big-endian, then the Avro body', () => {
    const b = frame(0x01020304, Buffer.from([9, 8]));
    expect([...b]).toEqual([0, 1, 2, 3, 4, 9, 8]);
    expect(unframe(b)).toEqual({ id: 0x01020304, body: Buffer.from([9, 8]) });
  });

  it('round-trips any id and body', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0x7fffffff }), fc.uint8Array(), (id, body) => {
        const u = unframe(frame(id, Buffer.from(body)));
        expect(u.id).toBe(id);
        expect([...u.body]).toEqual([...body]);
      }),
    );
  });

  it('refuses what is not framed', () => {
    expect(() => unframe(Buffer.from('{"a":1}'))).toThrow(/not a schema-registry framed value/);
    expect(() => unframe(Buffer.from([0, 1]))).toThrow(/not a schema-registry framed value/);
    expect(() => frame(-1, Buffer.alloc(0))).toThrow(RangeError);
  });
});

describe('AvroEventEncoder', () => {
  /** A registry of our own interface's shape (ids per distinct schema text); the real one is in integration. */
  function registry(refuse?: (subject: string, schema: string) => boolean) {
    const calls: string[] = [];
    const ids = new Map<string, number>();
    const r = {
      register: (subject: string, schema: string) => {
        calls.push(subject);
        if (refuse?.(subject, schema)) return Promise.reject(new SchemaIncompatibleError('HTTP 409'));
        if (!ids.has(schema)) ids.set(schema, ids.size + 1);
        return Promise.resolve(ids.get(schema)!);
      },
    };
    return { r: r as unknown as SchemaRegistryClient, calls };
  }

  it('registers once per subject, derives again when a column appears, and stays on Avro', async () => {
    let columns = [col('id', 'integer', true)];
    const { r, calls } = registry();
    const enc = new AvroEventEncoder(r, () => Promise.resolve(columns));
    const item = (after: Record<string, unknown>) => ({
      table: 'public.t',
      topic: 'cdc.t',
      event: event({ after }),
    });
    const [a, b] = await enc.encodeAll([item({ id: 1 }), item({ id: 2 })]);
    expect(unframe(a!).id).toBe(1);
    expect(unframe(b!).id).toBe(1);
    expect(calls).toEqual(['cdc.t-value']);
    columns = [col('id', 'integer', true), col('note', 'text')];
    const c = await enc.encode(item({ id: 3, note: 'x' }));
    expect(unframe(c).id).toBe(2);
    expect(calls).toEqual(['cdc.t-value', 'cdc.t-value']);
    // a column the catalog does not have either: a rejection, never JSON
    await expect(enc.encode(item({ id: 4, gone: 1 }))).rejects.toThrow(AvroShapeError);
  });

  it('names the table when the registry refuses its schema, and refuses two tables on one topic', async () => {
    const { r } = registry((_s, schema) => schema.includes('"note"'));
    const enc = new AvroEventEncoder(r, (t) =>
      Promise.resolve(
        t === 'public.t' ? [col('id', 'integer', true), col('note', 'text')] : [col('id', 'text')],
      ),
    );
    const e = event({ after: { id: 1 } });
    await expect(enc.encode({ table: 'public.t', topic: 'x', event: e })).rejects.toThrow(
      /^public\.t: the schema registry refused its Avro schema under x-value/,
    );
    const ok = new AvroEventEncoder(registry().r, (t) =>
      Promise.resolve(t === 'public.a' ? [col('id', 'integer')] : [col('id', 'integer'), col('x', 'text')]),
    );
    await ok.encode({ table: 'public.a', topic: 'shared', event: e });
    const shared = ok.encode({ table: 'public.b', topic: 'shared', event: e });
    await expect(shared).rejects.toThrow(ConnectorError);
    await expect(shared).rejects.toThrow(/public\.b: topic shared carries public\.a too/);
  });
});

describe('toAvroWireBatch', () => {
  it('lays out framed values, keys, CloudEvents headers and tombstones as the writer reads them', async () => {
    const ids = new Map<string, number>();
    const r = {
      register: (_subject: string, schema: string) => {
        if (!ids.has(schema)) ids.set(schema, ids.size + 7);
        return Promise.resolve(ids.get(schema)!);
      },
    } as unknown as SchemaRegistryClient;
    const enc = new AvroEventEncoder(r, () => Promise.resolve([col('id', 'text', true), col('n', 'bigint')]));
    const events = makeEvents(0, 5);
    const w = await toAvroWireBatch(asPacked(events), () => 'cdc.tasks', enc, undefined);
    expect(w.topics).toEqual(['cdc.tasks']);
    expect(w.ends).toHaveLength(5);
    const bytes = Buffer.from(w.bytes.buffer, w.bytes.byteOffset, w.bytes.byteLength);
    const keys = Buffer.from(w.keys.buffer, w.keys.byteOffset, w.keys.byteLength);
    const headers = Buffer.from(w.headers!.buffer, w.headers!.byteOffset, w.headers!.byteLength);
    const type = avroType(
      avroTableSchema('public.tasks', [col('id', 'text', true), col('n', 'bigint')]).schema,
    );
    events.forEach((e, i) => {
      const { id, body } = unframe(packed(bytes, w.ends, i));
      expect(id).toBe(7);
      const back = type.fromBuffer(body) as { id: string; data: { after: { n: bigint } } };
      expect(back.id).toBe(e.id);
      expect(back.data.after.n).toBe(BigInt(i));
      expect(packed(keys, w.keyEnds, i).toString()).toBe(e.partitionkey);
      expect(w.commitLsn[i]).toBe(e.position.commitLsn);
      expect(w.seq[i]).toBe(e.position.seq);
      const block = packed(headers, w.headerEnds!, i).toString('latin1');
      expect(block).toContain(`ce_id`);
      expect(block).toContain(e.id);
      expect(block).toContain(AVRO_CONTENT_TYPE);
    });
  });

  it('adds a tombstone (the key, no value, no headers) after each event the policy names', async () => {
    const r = { register: () => Promise.resolve(1) } as unknown as SchemaRegistryClient;
    const enc = new AvroEventEncoder(r, () => Promise.resolve([col('id', 'text', true), col('n', 'bigint')]));
    const events = makeEvents(0, 3);
    const w = await toAvroWireBatch(
      asPacked(events),
      () => 't',
      enc,
      undefined,
      (_type, _table) => true,
    );
    expect(w.ends).toHaveLength(6);
    const keys = Buffer.from(w.keys.buffer, w.keys.byteOffset, w.keys.byteLength);
    for (let i = 0; i < 6; i++) {
      const stone = i % 2 === 1;
      expect(w.tombstone![i]).toBe(stone ? 1 : 0);
      expect(packed(keys, w.keyEnds, i).toString()).toBe(events[i >> 1]!.partitionkey);
      if (stone) expect(w.ends[i]).toBe(w.ends[i - 1]); // no value bytes
      expect(w.seq[i]).toBe(events[i >> 1]!.position.seq);
    }
  });
});
