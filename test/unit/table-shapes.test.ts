import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import type { ChangeShape } from '../../src/extractor/decode/changes.ts';
import { createPgoutputDecoder, sqlTypeName } from '../../src/extractor/decode/pgoutput.ts';
import { decodeWal2Json } from '../../src/extractor/decode/wal2json.ts';
import { schemaChangedData } from '../../src/extractor/pipeline/schema-event.ts';
import {
  changedColumns,
  decideShape,
  recordedAround,
  sameColumns,
  shapeAt,
  ShapeTracker,
  type ShapeChange,
  type ShapeColumn,
  type ShapeEntry,
  type ShapeStore,
} from '../../src/extractor/shapes/index.ts';
import { comparePosition, type Position } from '../../src/util/lsn.ts';

const shape = (columns: ShapeColumn[], partial = false): ChangeShape => ({
  keys: columns.map((c) => JSON.stringify(c.name)),
  types: columns.map((c) => JSON.stringify(c.type)),
  partial,
});
const ID = { name: 'id', type: 'integer' };
const NOTE = { name: 'note', type: 'text' };
const QTY = { name: 'qty', type: 'integer' };
const pos = (commit: number, seq: number): Position => ({ commitLsn: BigInt(commit), seq });

/** The state schema's table_shapes, in memory: the same contract as pg-store.ts. */
class MemoryShapeStore implements ShapeStore {
  readonly entries = new Map<string, ShapeEntry[]>();
  async around(table: string, p: Position): Promise<ShapeEntry[]> {
    return (this.entries.get(table) ?? [])
      .filter((e) => comparePosition(e.position, p) <= 0)
      .sort((a, b) => comparePosition(b.position, a.position))
      .slice(0, 2);
  }
  async record(table: string, e: ShapeEntry): Promise<void> {
    const list = this.entries.get(table) ?? [];
    if (!list.some((x) => comparePosition(x.position, e.position) === 0)) list.push(e);
    this.entries.set(table, list);
  }
}

describe('table shapes (schema.changed): pure parts', () => {
  it('reads a partial change (wal2json update) against the columns before it', () => {
    // note (text) left out: an unchanged TOAST value, still there; qty (integer) left out: dropped
    expect(shapeAt([ID, NOTE, QTY], shape([ID], true))).toEqual([ID, NOTE]);
    // a new column after the known ones; a full shape is taken as it is
    expect(shapeAt([ID, NOTE], shape([ID, { name: 'x', type: 'date' }], true))).toEqual([
      ID,
      NOTE,
      { name: 'x', type: 'date' },
    ]);
    expect(shapeAt([ID, NOTE], shape([ID]))).toEqual([ID]);
    expect(shapeAt(undefined, shape([ID], true))).toEqual([ID]);
  });

  it('compares columns by name and type, not order, and names what changed', () => {
    expect(sameColumns([ID, NOTE], [NOTE, ID])).toBe(true);
    expect(sameColumns([ID, NOTE], [ID, { name: 'note', type: 'character varying(5)' }])).toBe(false);
    expect(changedColumns([ID, NOTE], [ID, { name: 'note', type: 'bigint' }, QTY])).toEqual(['note', 'qty']);
    expect(changedColumns([ID, NOTE, QTY], [ID])).toEqual(['note', 'qty']);
  });

  it('decides: a first sight is a baseline; a record at the position wins over a recomputation', () => {
    expect(decideShape(undefined, undefined, shape([ID]))).toEqual({
      columns: [ID],
      changed: false,
      record: true,
    });
    // a partial first sight is completed from the catalog
    expect(decideShape(undefined, undefined, shape([ID], true), [ID, NOTE]).columns).toEqual([ID, NOTE]);
    expect(decideShape(undefined, [ID, NOTE], shape([ID], true), [ID])).toEqual({
      columns: [ID, NOTE],
      changed: false,
      record: false,
    });
    expect(decideShape([ID], undefined, shape([ID, NOTE]))).toEqual({
      columns: [ID, NOTE],
      changed: true,
      record: true,
    });
    expect(decideShape([ID], [ID, NOTE], shape([ID, NOTE])).record).toBe(false);
  });

  it('finds the entry strictly before a position and the one at it (property)', () => {
    const entry = fc.record({ commit: fc.integer({ min: 0, max: 5 }), seq: fc.integer({ min: 0, max: 5 }) });
    fc.assert(
      fc.property(fc.uniqueArray(entry, { selector: (e) => `${e.commit}/${e.seq}` }), entry, (es, p) => {
        const entries = es.map((e) => ({ position: pos(e.commit, e.seq), columns: [] }));
        const at = pos(p.commit, p.seq);
        const r = recordedAround(entries, at);
        const earlier = entries.filter((e) => comparePosition(e.position, at) < 0);
        const newest = earlier.sort((a, b) => comparePosition(b.position, a.position))[0];
        expect(r.before).toBe(newest);
        expect(r.at).toBe(entries.find((e) => comparePosition(e.position, at) === 0));
      }),
    );
  });

  it('spells pgoutput types as format_type does', () => {
    expect(sqlTypeName(23, -1)).toBe('integer');
    expect(sqlTypeName(1043, 24)).toBe('character varying(20)');
    expect(sqlTypeName(1015, 14)).toBe('character varying(10)[]');
    expect(sqlTypeName(1700, ((10 << 16) | 2) + 4)).toBe('numeric(10,2)');
    expect(sqlTypeName(1184, 3)).toBe('timestamp(3) with time zone');
    expect(sqlTypeName(1114, -1)).toBe('timestamp without time zone');
    expect(sqlTypeName(424242, -1, new Map([[424242, 'mood']]))).toBe('mood');
    expect(sqlTypeName(424243, -1)).toBe('oid 424243');
    expect(sqlTypeName(1186, 5)).toBe('interval (typmod 5)');
  });

  it('gives each change its columns: wal2json inserts (full), updates (partial), pgoutput Relations', () => {
    const ins = decodeWal2Json(
      '{"action":"I","lsn":"0/10","schema":"public","table":"t","columns":[{"name":"id","type":"integer","value":1},{"name":"note","type":"character varying(20)","value":"a"}]}',
      '0/10',
    );
    expect(ins).toMatchObject({
      shape: { keys: ['"id"', '"note"'], types: ['"integer"', '"character varying(20)"'], partial: false },
    });
    const upd = decodeWal2Json(
      '{"action":"U","lsn":"0/11","schema":"public","table":"t","columns":[{"name":"id","type":"integer","value":1}],"identity":[{"name":"id","type":"integer","value":1}]}',
      '0/11',
    );
    expect(upd).toMatchObject({ shape: { keys: ['"id"'], types: ['"integer"'], partial: true } });
    const del = decodeWal2Json(
      '{"action":"D","lsn":"0/12","schema":"public","table":"t","identity":[{"name":"id","type":"integer","value":1}]}',
      '0/12',
    );
    expect(del).not.toHaveProperty('shape');

    const decode = createPgoutputDecoder();
    const rel = Buffer.concat([
      Buffer.from('R'),
      u32(16400),
      Buffer.from('public\0t\0d'),
      u16(2),
      Buffer.from([1]),
      Buffer.from('id\0'),
      u32(23),
      i32(-1),
      Buffer.from([0]),
      Buffer.from('note\0'),
      u32(1043),
      i32(24),
    ]);
    decode(rel, '0/1');
    const insert = Buffer.concat([
      Buffer.from('I'),
      u32(16400),
      Buffer.from('N'),
      u16(2),
      Buffer.from('t'),
      i32(1),
      Buffer.from('1'),
      Buffer.from('n'),
    ]);
    expect(decode(insert, '0/2')).toMatchObject({
      shape: { keys: ['"id"', '"note"'], types: ['"integer"', '"character varying(20)"'], partial: false },
    });
  });

  it('lists the governed columns: excluded ones never named, masked ones with their rule', () => {
    const view = {
      showsColumn: (n: string) => n !== 'ssn',
      maskOf: (n: string) => (n === 'email' ? 'hmac-sha256' : undefined),
    };
    const email = { name: 'email', type: 'text' };
    const ssn = { name: 'ssn', type: 'text' };
    expect(schemaChangedData([ID, email], [ID, email, ssn], view)).toBeNull();
    const data = JSON.parse(`{${schemaChangedData([ID, email, ssn], [ID, email, NOTE], view)!}}`);
    expect(data).toEqual({
      before: null,
      after: null,
      changed: ['note'],
      columns: {
        before: [ID, { ...email, mask: 'hmac-sha256' }],
        after: [ID, { ...email, mask: 'hmac-sha256' }, NOTE],
      },
    });
  });
});

/**
 * A WAL of transactions, each a list of changes of tables (its columns as the change shows them), run
 * through the tracker as the pipeline does: each change takes the next seq, a schema.changed event the
 * change's seq and the change the next one.
 */
interface WalChange {
  table: string;
  shape: ChangeShape;
}
interface Emitted {
  id: string;
  table: string;
  schema?: ShapeChange;
}

async function run(
  store: ShapeStore,
  wal: WalChange[][],
  from: number,
  stopAfter = Infinity,
  catalog?: (table: string) => ShapeColumn[],
): Promise<{ events: Emitted[]; processed: number }> {
  const tracker = new ShapeTracker(store);
  const events: Emitted[] = [];
  let processed = 0;
  for (let t = from; t < wal.length; t++) {
    let seq = 0;
    for (const c of wal[t]!) {
      if (processed++ >= stopAfter) return { events, processed: processed - 1 };
      let s = seq++;
      const p = { commitLsn: BigInt(t + 1), seq: s };
      const changed = await tracker.check(c.table, c.shape, p, catalog ? () => catalog(c.table) : undefined);
      if (changed) {
        events.push({ id: `${t + 1}/${s}`, table: c.table, schema: changed });
        s = seq++;
      }
      events.push({ id: `${t + 1}/${s}`, table: c.table });
    }
  }
  return { events, processed };
}

const txOf = (id: string) => Number(id.split('/')[0]) - 1;

describe('table shapes (schema.changed): replays emit the same events at the same ids', () => {
  const column = fc.record({
    name: fc.constantFrom('id', 'a', 'b', 'c'),
    type: fc.constantFrom('integer', 'text', 'bigint'),
  });
  const columns = fc.uniqueArray(column, { selector: (c) => c.name, minLength: 1, maxLength: 4 });
  // each table goes through a few shapes; a change shows the current one, an update maybe without
  // its text columns (unchanged TOAST values)
  const wal = fc
    .record({
      shapes: fc.dictionary(fc.constantFrom('t1', 't2'), fc.array(columns, { minLength: 1, maxLength: 3 }), {
        minKeys: 1,
      }),
      steps: fc.array(
        fc.record({ table: fc.constantFrom('t1', 't2'), next: fc.boolean(), partial: fc.boolean() }),
        { minLength: 1, maxLength: 40 },
      ),
      cuts: fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 40, maxLength: 40 }),
    })
    .map(({ shapes, steps, cuts }) => {
      const at: Record<string, number> = {};
      const changes: WalChange[] = [];
      for (const s of steps) {
        const versions = shapes[s.table];
        if (!versions) continue;
        at[s.table] = Math.min((at[s.table] ?? 0) + (s.next ? 1 : 0), versions.length - 1);
        const cols = versions[at[s.table]!]!;
        const shown = s.partial ? cols.filter((c) => c.type !== 'text') : cols;
        changes.push({ table: s.table, shape: shape(shown, s.partial) });
      }
      const txs: WalChange[][] = [];
      for (let i = 0, k = 0; i < changes.length; k++) {
        txs.push(changes.slice(i, i + cuts[k]!));
        i += cuts[k]!;
      }
      return { txs, catalog: (t: string) => shapes[t]!.at(-1)! };
    });

  it('a run cut anywhere and replayed from any confirmed transaction matches the uncut run (property)', async () => {
    await fc.assert(
      fc.asyncProperty(wal, fc.nat(), fc.nat(), async ({ txs, catalog }, cutAt, confirmAt) => {
        const whole = await run(new MemoryShapeStore(), txs, 0, Infinity, catalog);
        const store = new MemoryShapeStore();
        const total = txs.reduce((n, t) => n + t.length, 0);
        const cut = await run(store, txs, 0, cutAt % (total + 1), catalog);
        // confirmed: at most the transactions the cut run finished
        let done = 0;
        for (let n = 0; done < txs.length && n + txs[done]!.length <= cut.processed; done++)
          n += txs[done]!.length;
        const from = confirmAt % (done + 1);
        const replay = await run(store, txs, from, Infinity, catalog);
        expect(replay.events).toEqual(whole.events.filter((e) => txOf(e.id) >= from));
        // and the replay once more (a second crash at the same place) changes nothing
        expect((await run(store, txs, from, Infinity, catalog)).events).toEqual(replay.events);
      }),
      { numRuns: 300 },
    );
  });

  it('emits one event per change of columns, none for a first sight or a TOAST value left out', async () => {
    const t = (cols: ShapeColumn[], partial = false): WalChange => ({
      table: 'w',
      shape: shape(cols, partial),
    });
    const txs = [[t([ID, NOTE])], [t([ID], true), t([ID, NOTE, QTY])], [t([ID, QTY])]];
    const { events } = await run(new MemoryShapeStore(), txs, 0);
    expect(
      events.map((e) => [e.id, e.schema ? changedColumns(e.schema.before, e.schema.after) : null]),
    ).toEqual([
      ['1/0', null],
      ['2/0', null],
      ['2/1', ['qty']],
      ['2/2', null],
      ['3/0', ['note']],
      ['3/1', null],
    ]);
  });

  it('a baseline recorded from a partial change wins over a changed catalog on replay', async () => {
    const store = new MemoryShapeStore();
    const txs = [[{ table: 'w', shape: shape([ID], true) }], [{ table: 'w', shape: shape([ID, NOTE]) }]];
    const first = await run(store, txs, 0, Infinity, () => [ID, NOTE]);
    expect(first.events.filter((e) => e.schema)).toEqual([]);
    // the catalog moved on (a column dropped since): the record, not the catalog, says what was there
    const replay = await run(store, txs, 0, Infinity, () => [ID]);
    expect(replay.events).toEqual(first.events);
  });
});

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}
function i32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
}
function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}
