import { describe, expect, it } from '@jest/globals';
import type { RowChange } from '../../src/extractor/decode/changes.ts';
import { Mapper, type TxContext } from '../../src/extractor/pipeline/mapper.ts';
import type { ResolvedRoles } from '../../src/extractor/pipeline/roles.ts';
import { textRow } from '../../src/extractor/decode/row-json.ts';

const tx: TxContext = { xid: 731, commitLsn: 0x16b3748n, commitTime: '2026-11-23T10:00:00.5+00:00' };

function change(
  kind: RowChange['kind'],
  table: string,
  after: object | null,
  before: object | null,
): RowChange {
  return {
    kind,
    lsn: '0/16B36F0',
    schema: 'public',
    table,
    new: after ? textRow(after as Record<string, unknown>) : null,
    old: before ? textRow(before as Record<string, unknown>) : null,
  };
}

describe('mapper (events written as JSON text)', () => {
  const roles: ResolvedRoles = {
    task: { table: 'public.tasks', idColumn: 'id', statusColumn: 'status' },
    eventStore: { table: 'public.event_store', idColumn: 'event_id', contextColumn: 'etl_context_id' },
  };
  const mapper = new Mapper({ database: 'db', slot: 'slot', roles });

  it('writes the envelope of docs/design.md §4 with the row values as they were decoded', () => {
    const ch = change(
      'update',
      'tasks',
      { id: '42', status: 'done', n: 2 },
      { id: '42', status: 'running', n: 2 },
    );
    const e = mapper.map(
      { change: ch, root: 'public.tasks', row: ch.new, unchangedToast: [], pk: ['id'] },
      tx,
      3,
    );
    expect(e).toMatchObject({ id: '0/16B3748/3', type: 'task.status_changed', partitionkey: '42' });
    expect(JSON.parse(e!.json)).toEqual({
      specversion: '1.0',
      id: '0/16B3748/3',
      source: '/tag-connector/db/slot',
      time: '2026-11-23T10:00:00.5+00:00',
      datacontenttype: 'application/json',
      lsn: '0/16B36F0',
      commitlsn: '0/16B3748',
      xid: 731,
      type: 'task.status_changed',
      subject: 'tasks/42',
      partitionkey: '42',
      data: {
        op: 'u',
        schema: 'public',
        table: 'tasks',
        before: { id: '42', status: 'running', n: 2 },
        after: { id: '42', status: 'done', n: 2 },
        changed: ['status'],
        from: 'running',
        to: 'done',
      },
    });
  });

  it('remembers statuses when the old row is only the key', () => {
    const ins = change('insert', 'tasks', { id: 7, status: 'created' }, null);
    mapper.map({ change: ins, root: 'public.tasks', row: ins.new, unchangedToast: [], pk: ['id'] }, tx, 0);
    const up = change('update', 'tasks', { id: 7, status: 'active' }, { id: 7 });
    const e = mapper.map(
      { change: up, root: 'public.tasks', row: up.new, unchangedToast: ['big'], pk: ['id'] },
      tx,
      1,
    );
    const parsed = JSON.parse(e!.json);
    expect(parsed.type).toBe('task.status_changed');
    expect(parsed.data).toMatchObject({ from: 'created', to: 'active', unchanged_toast: ['big'] });
    expect(parsed.data.changed).toBeUndefined();
  });

  it('maps event-store inserts to etl_context.event and other tables to row.*', () => {
    const ev = change(
      'insert',
      'event_store',
      { event_id: 5, etl_context_id: 9, type: 'q:INITIAL', payload: { a: [1] }, meta: null, error: false },
      null,
    );
    const e = mapper.map(
      { change: ev, root: 'public.event_store', row: ev.new, unchangedToast: [], pk: ['event_id'] },
      tx,
      0,
    );
    expect(JSON.parse(e!.json)).toMatchObject({
      type: 'etl_context.event',
      subject: 'etl_contexts/9/events/5',
      partitionkey: '9',
      data: {
        event_id: 5,
        etl_context_id: 9,
        event: { type: 'q:INITIAL', payload: { a: [1] }, meta: null, error: false },
      },
    });
    const other = change('delete', 'things', null, { k1: 'a"b', k2: 3 });
    const o = mapper.map(
      { change: other, root: 'public.things', row: null, unchangedToast: [], pk: ['k1', 'k2'] },
      tx,
      1,
    );
    expect(JSON.parse(o!.json)).toMatchObject({
      type: 'row.delete',
      // composite keys as a JSON array text: ('a,b','c') and ('a','b,c') stay apart
      subject: 'public.things/["a\\"b",3]',
      partitionkey: '["a\\"b",3]',
    });
  });
});

describe('mapper: backfill reads', () => {
  const roles: ResolvedRoles = { task: { table: 'public.tasks', idColumn: 'id', statusColumn: 'status' } };
  const mapper = new Mapper({ database: 'db', slot: 'slot', roles });
  const read = (table: string, row: Record<string, unknown>) => {
    const r = textRow(row);
    return mapper.map(
      {
        change: { kind: 'read', lsn: '0/16B3700', schema: 'public', table, new: r, old: null },
        root: `public.${table}`,
        row: r,
        unchangedToast: [],
        pk: ['id'],
      },
      tx,
      5,
    )!;
  };

  it('maps a row of a plain table to row.read with op "r" at the watermark position', () => {
    const e = read('items', { id: 1, name: 'a' });
    expect(e).toMatchObject({ id: '0/16B3748/5', type: 'row.read', partitionkey: '1' });
    const parsed = JSON.parse(e.json) as { lsn: string; subject: string; data: Record<string, unknown> };
    expect(parsed.lsn).toBe('0/16B3700');
    expect(parsed.subject).toBe('public.items/1');
    expect(parsed.data).toEqual({
      op: 'r',
      schema: 'public',
      table: 'items',
      before: null,
      after: { id: 1, name: 'a' },
    });
  });

  it('maps a role table row to <role>.read, and the Debezium envelope says op "r"', async () => {
    const e = read('tasks', { id: '42', status: 'running' });
    expect(e.type).toBe('task.read');
    const { toDebezium } = await import('../../src/events/debezium.ts');
    const d = toDebezium(JSON.parse(e.json), 'db', '1.0.0');
    expect(d.op).toBe('r');
    expect(d.after).toEqual({ id: '42', status: 'running' });
  });
});

describe('mapper: schema.changed', () => {
  const before = [
    { name: 'id', type: 'integer' },
    { name: 'email', type: 'text' },
    { name: 'ssn', type: 'text' },
  ];
  const after = [...before, { name: 'tier', type: 'character varying(8)' }];
  const c = (b: typeof before, a: typeof before) => ({
    root: 'public.customers',
    schema: 'public',
    table: 'customers',
    lsn: '0/16B36F0',
    change: { before: b, after: a },
  });

  it('writes the envelope with the governed columns, at its own seq, keyed by the table', async () => {
    const { Governance, tableRulesSchema } = await import('../../src/extractor/governance/index.ts');
    const rules = { 'public.customers': { columns: { exclude: ['ssn'] }, mask: { email: 'redact' } } };
    const governance = new Governance(tableRulesSchema.parse(rules), undefined);
    const mapper = new Mapper({ database: 'db', slot: 'slot', roles: {}, governance });
    const e = mapper.mapSchemaChange(c(before, after), tx, 4)!;
    expect(e).toMatchObject({ id: '0/16B3748/4', type: 'schema.changed', partitionkey: 'public.customers' });
    expect(JSON.parse(e.json)).toEqual({
      specversion: '1.0',
      id: '0/16B3748/4',
      source: '/tag-connector/db/slot',
      time: tx.commitTime,
      datacontenttype: 'application/json',
      lsn: '0/16B36F0',
      commitlsn: '0/16B3748',
      xid: 731,
      type: 'schema.changed',
      subject: 'public.customers',
      partitionkey: 'public.customers',
      data: {
        op: 's',
        schema: 'public',
        table: 'customers',
        before: null,
        after: null,
        changed: ['tier'],
        columns: {
          before: [
            { name: 'id', type: 'integer' },
            { name: 'email', type: 'text', mask: 'redact' },
          ],
          after: [
            { name: 'id', type: 'integer' },
            { name: 'email', type: 'text', mask: 'redact' },
            { name: 'tier', type: 'character varying(8)' },
          ],
        },
      },
    });
    // a change of the excluded column alone: nothing to tell
    expect(mapper.mapSchemaChange(c(before.slice(0, 2), before), tx, 5)).toBeNull();
    // Debezium consumers get op "s" and no row
    const { toDebezium } = await import('../../src/events/debezium.ts');
    expect(toDebezium(JSON.parse(e.json), 'db', '1.0.0')).toMatchObject({
      op: 's',
      before: null,
      after: null,
    });
  });
});
