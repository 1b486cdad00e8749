import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { createHmac } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RowChange } from '../../src/extractor/decode/changes.ts';
import { ConfigError, loadConfig } from '../../src/config/index.ts';
import {
  Governance,
  GovernanceError,
  checkFilter,
  eventSchema,
  rowSchema,
} from '../../src/extractor/governance/index.ts';
import { keyOfColumns, Mapper, type TxContext } from '../../src/extractor/pipeline/mapper.ts';
import { textRow } from '../../src/extractor/decode/row-json.ts';
import { configRoutes } from '../../src/sinks/route.ts';

const tx: TxContext = { xid: 7, commitLsn: 0x1000n, commitTime: '2026-12-06T00:00:00Z' };
const KEY = 'k3y';
const hmac = (text: string) => createHmac('sha256', KEY).update(text).digest('hex');
const tmp = mkdtempSync(join(tmpdir(), 'tagc-gov-'));
function file(text: string): string {
  const p = join(tmp, `f${Math.random().toString(36).slice(2)}`);
  writeFileSync(p, text);
  return p;
}

const CUSTOMERS = `
tables:
  public.customers:
    columns: { exclude: [ssn] }
    mask:
      email: hmac-sha256
      phone: redact
      notes: truncate(4)
      score: hmac-sha256
    filter: "row.region == 'eu' && row.status != 'draft'"
    key: [tenant_id, id]
    topic: "cdc.{schema}.{table}"
    tombstones: true
`;

function mapperFor(yaml: string) {
  const config = loadConfig({ env: {}, configFile: file(yaml), flags: { maskKeyFile: file(`${KEY}\n`) } });
  const governance = new Governance(config.tableRules, config.maskKey);
  return { config, governance, mapper: new Mapper({ database: 'db', slot: 's', roles: {}, governance }) };
}

function map(
  mapper: Mapper,
  kind: RowChange['kind'],
  after: Record<string, unknown> | null,
  before: Record<string, unknown> | null,
  oldFull = true,
) {
  const change: RowChange = {
    kind,
    lsn: '0/F00',
    schema: 'public',
    table: 'customers',
    new: after ? textRow(after) : null,
    old: before ? textRow(before) : null,
  };
  const e = mapper.map(
    { change, root: 'public.customers', row: change.new, unchangedToast: [], pk: ['id'], oldFull },
    tx,
    1,
  );
  return e && { ...e, parsed: JSON.parse(e.json) };
}

const row = (o: Record<string, unknown> = {}) => ({
  id: 1,
  tenant_id: 't1',
  email: 'a@b.c',
  phone: '+33 1',
  notes: 'longer notes',
  score: 4.5,
  ssn: '123-45',
  region: 'eu',
  status: 'active',
  ...o,
});

describe('governance rules (YAML tables:)', () => {
  const { mapper, config, governance } = mapperFor(CUSTOMERS);

  it('drops excluded columns, masks (HMAC of the text, strings unquoted), keys by the key columns', () => {
    const e = map(mapper, 'insert', row(), null)!;
    const after = e.parsed.data.after;
    expect(after).not.toHaveProperty('ssn');
    expect(after.email).toBe(hmac('a@b.c'));
    expect(after.email).toMatch(/^[0-9a-f]{64}$/);
    expect(after.score).toBe(hmac('4.5'));
    expect(after.phone).toBe('[redacted]');
    expect(after.notes).toBe('long');
    expect(e.partitionkey).toBe('["t1",1]');
    expect(e.parsed.subject).toBe('public.customers/1');
    expect(e.json).not.toContain('123-45');
    expect(e.json).not.toContain('a@b.c');
  });

  it('keeps null as null under every mask', () => {
    const after = map(mapper, 'insert', row({ email: null, phone: null, notes: null }), null)!.parsed.data
      .after;
    expect([after.email, after.phone, after.notes]).toEqual([null, null, null]);
  });

  it('drops rows the filter rejects; an update across the filter is an insert or a delete', () => {
    expect(map(mapper, 'insert', row({ region: 'us' }), null)).toBeNull();
    expect(map(mapper, 'update', row({ status: 'draft' }), row({ region: 'us' }))).toBeNull();
    const moveIn = map(mapper, 'update', row(), row({ status: 'draft' }))!;
    expect(moveIn.type).toBe('row.insert');
    expect(moveIn.parsed.data).toMatchObject({ op: 'c', before: null });
    const moveOut = map(mapper, 'update', row({ region: 'us' }), row())!;
    expect(moveOut.type).toBe('row.delete');
    expect(moveOut.parsed.data.after).toBeNull();
    expect(moveOut.parsed.data.before).not.toHaveProperty('ssn');
    expect(moveOut.parsed.data.before.email).toBe(hmac('a@b.c'));
    const stay = map(mapper, 'update', row({ notes: 'x' }), row())!;
    expect(stay.type).toBe('row.update');
    expect(stay.parsed.data.changed).toEqual(['notes']);
    expect(map(mapper, 'delete', null, row({ region: 'us' }))).toBeNull();
    expect(map(mapper, 'delete', null, row())!.type).toBe('row.delete');
  });

  it('with only the identity as old row, passes deletes on and turns a failing update into a delete', () => {
    expect(map(mapper, 'delete', null, { id: 1 }, false)!.type).toBe('row.delete');
    const out = map(mapper, 'update', row({ region: 'us' }), null, false)!;
    expect(out.type).toBe('row.delete');
    expect(out.parsed.data.before).toEqual({ id: 1 });
    expect(map(mapper, 'update', row(), null, false)!.type).toBe('row.update');
  });

  it('throws a GovernanceError without values when the filter cannot be evaluated', () => {
    let err: unknown;
    try {
      map(mapper, 'insert', { id: 2, email: 'secret@x', region: 'eu' }, null);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GovernanceError);
    const g = err as GovernanceError;
    expect(g.table).toBe('public.customers');
    expect(g.message).not.toContain('secret@x');
    // the dead letter's event: every rule but the filter
    expect(g.event?.json).toBeDefined();
    expect(g.event!.json).not.toContain('secret@x');
    expect(JSON.parse(g.event!.json).data.after.email).toBe(hmac('secret@x'));
  });

  it('routes to the table topic and lists tombstone tables', () => {
    expect(configRoutes(config)).toEqual({ 'public.customers': 'cdc.public.customers' });
    expect([...governance.tombstoneTables()]).toEqual(['public.customers']);
  });

  it('leaves tables without rules as they were', () => {
    const m = new Mapper({ database: 'db', slot: 's', roles: {}, governance });
    const change: RowChange = {
      kind: 'insert',
      lsn: '0/1',
      schema: 'public',
      table: 'other',
      new: textRow({ id: 1, ssn: 'x' }),
      old: null,
    };
    const e = m.map(
      { change, root: 'public.other', row: change.new, unchangedToast: [], pk: ['id'] },
      tx,
      0,
    )!;
    expect(JSON.parse(e.json).data.after).toEqual({ id: 1, ssn: 'x' });
  });

  it('columns.include keeps only the listed columns', () => {
    const { mapper: m } = mapperFor('tables:\n  public.customers:\n    columns: { include: [id, region] }\n');
    expect(map(m, 'insert', row(), null)!.parsed.data.after).toEqual({ id: 1, region: 'eu' });
  });
});

describe('governance config errors (exit 2 naming the field)', () => {
  const fails = (yaml: string, flags: Record<string, unknown> = {}): ConfigError => {
    try {
      loadConfig({ env: {}, configFile: file(yaml), flags });
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return err as ConfigError;
    }
    throw new Error('expected a ConfigError');
  };

  it('names the table and the position of a bad filter', () => {
    const e = fails(`tables:\n  public.t:\n    filter: "row.a == 'x' &&& row.b"\n`);
    expect(e.field).toBe('tables.public.t.filter');
    expect(e.message).toMatch(/line 1, column 1[0-9]/);
    expect(fails(`tables:\n  public.t:\n    filter: "row.a + 1"\n`).field).toBe('tables.public.t.filter');
    expect(fails(`tables:\n  public.t:\n    filter: "nope == 1"\n`).message).toMatch(/nope/);
  });

  it('refuses an unknown mask, a key column that is excluded, an hmac without a key, unknown keys', () => {
    expect(fails(`tables:\n  public.t:\n    mask: { a: sha1 }\n`).field).toBe('tables.public.t.mask.a');
    expect(fails(`tables:\n  public.t:\n    columns: { exclude: [id] }\n    key: id\n`).field).toBe(
      'tables.public.t.key',
    );
    expect(fails(`tables:\n  public.t:\n    mask: { a: hmac-sha256 }\n`).field).toBe('maskKeyFile');
    expect(fails(`tables:\n  public.t:\n    colums: {}\n`).field).toBe('tables.public.t');
    expect(fails(`tables:\n  public.t:\n    topic: "x.{tenant}"\n`).field).toBe('tables.public.t.topic');
  });

  it('keeps tables: as a list of tracked tables', () => {
    const c = loadConfig({ env: {}, configFile: file('tables: [public.a, public.b]\n') });
    expect(c.tables).toEqual(['public.a', 'public.b']);
    expect(c.tableRules).toEqual({});
  });

  it('checks filters without evaluating them', () => {
    expect(checkFilter("row.region == 'eu'")).toBeUndefined();
    expect(checkFilter('row.n > 3 || has(row.x)')).toBeUndefined();
  });
});

describe('composite keys', () => {
  it('never collide: different key tuples give different keys', () => {
    expect(keyOfColumns(textRow({ a: 'a,b', b: 'c' }), ['a', 'b'])).not.toBe(
      keyOfColumns(textRow({ a: 'a', b: 'b,c' }), ['a', 'b']),
    );
    const value = fc.oneof(fc.string(), fc.integer());
    fc.assert(
      fc.property(fc.tuple(value, value), fc.tuple(value, value), (x, y) => {
        const kx = keyOfColumns(textRow({ a: x[0], b: x[1] }), ['a', 'b']);
        const ky = keyOfColumns(textRow({ a: y[0], b: y[1] }), ['a', 'b']);
        expect(kx === ky).toBe(JSON.stringify(x) === JSON.stringify(y));
        expect(JSON.parse(kx!)).toEqual(x);
      }),
    );
  });
});

describe('JSON Schema of governed events', () => {
  it('types columns as the events carry them; excluded absent, masked strings', () => {
    const { governance } = mapperFor(CUSTOMERS);
    const cols = [
      { name: 'id', type: 'integer', notNull: true },
      { name: 'big', type: 'bigint', notNull: false },
      { name: 'email', type: 'text', notNull: false },
      { name: 'phone', type: 'text', notNull: true },
      { name: 'notes', type: 'character varying(200)', notNull: true },
      { name: 'ssn', type: 'text', notNull: false },
      { name: 'tags', type: 'text[]', notNull: false },
      { name: 'at', type: 'timestamp with time zone', notNull: true },
      { name: 'doc', type: 'jsonb', notNull: false },
    ];
    const row = rowSchema(cols, governance.for('public.customers')) as {
      properties: Record<string, unknown>;
    };
    expect(row.properties).toEqual({
      id: { type: 'integer' },
      big: { type: ['string', 'null'], pattern: '^-?[0-9]' },
      email: { type: ['string', 'null'], pattern: '^[0-9a-f]{64}$' },
      phone: { const: '[redacted]' },
      notes: { type: 'string', maxLength: 4 },
      tags: { type: ['array', 'null'], items: { type: 'string' } },
      at: { type: 'string', format: 'date-time' },
      doc: {},
    });
    const e = eventSchema('public.customers', cols) as {
      properties: { data: { properties: { table: unknown } } };
    };
    expect(e.properties.data.properties.table).toEqual({ const: 'customers' });
  });
});
