import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import type { Row } from '../../src/extractor/decode/changes.ts';
import { CheckpointTracker } from '../../src/extractor/pipeline/checkpoint-tracker.ts';
import {
  lowWatermark,
  parseWatermark,
  type ChunkData,
  type HighWatermark,
  type LowWatermark,
} from '../../src/extractor/backfill/messages.ts';
import { chunkReads, chunkRow, rowKey, WatermarkWindows } from '../../src/extractor/backfill/windows.ts';
import { chunkRowsText } from '../../src/extractor/backfill/chunk-rows.ts';
import { textRow, typedRow } from '../../src/extractor/decode/row-json.ts';

const TABLE = 'public.t';

function high(key: string[]): HighWatermark {
  return { kind: 'high', slot: 's', backfill: 'b', table: TABLE, nonce: 'n', key, count: 0 };
}

/** Closes the chunk's window and gives the reads the stream emits for `data`; undefined: no window. */
function close(w: WatermarkWindows, key: string[], data: ChunkData): Row[] | undefined {
  const win = w.close(high(key));
  return win && chunkReads(data, key, win);
}

/** What the stream carries, in commit order. */
type WalItem =
  | { k: 'change'; op: 'c' | 'u' | 'd'; id: number; v: number }
  | { k: 'low'; lsn: bigint }
  | { k: 'high'; rows: [number, number][] };

type Step = { live: [number, number, number][]; beforeRead: number; afterRead: number };

/**
 * The watermark protocol against a model table: live changes commit between the steps of each
 * chunk (before the low watermark, between it and the read, between the read and the high
 * watermark); the stream sees them in commit order; folding the events by key must give the table.
 */
function simulate(
  initial: Map<number, number>,
  steps: Step[],
  chunkSize: number,
): { table: Map<number, number>; folded: Map<number, number> } {
  const table = new Map(initial);
  const wal: WalItem[] = [];
  let lsn = 1n;
  const apply = ([op, id, v]: [number, number, number]) => {
    if (op === 0) {
      if (table.has(id)) {
        table.set(id, v);
        wal.push({ k: 'change', op: 'u', id, v });
      } else {
        table.set(id, v);
        wal.push({ k: 'change', op: 'c', id, v });
      }
    } else if (table.has(id)) {
      table.delete(id);
      wal.push({ k: 'change', op: 'd', id, v: 0 });
    }
  };
  let lastKey: number | null = null;
  let done = false;
  for (const step of steps) {
    if (done) {
      step.live.forEach(apply);
      continue;
    }
    const live = [...step.live];
    const before = live.splice(0, step.beforeRead);
    const between = live.splice(0, step.afterRead);
    wal.push({ k: 'low', lsn: lsn++ });
    before.forEach(apply);
    // The read: a snapshot after the low watermark committed.
    const keys = [...table.keys()].filter((k) => lastKey === null || k > lastKey).sort((a, b) => a - b);
    const chunk = keys.slice(0, chunkSize).map((k): [number, number] => [k, table.get(k)!]);
    between.forEach(apply); // committed after the read's snapshot, before the high watermark
    wal.push({ k: 'high', rows: chunk });
    if (chunk.length > 0) lastKey = chunk[chunk.length - 1]![0];
    if (chunk.length < chunkSize) done = true;
    live.forEach(apply);
  }
  // The consumer: the stream through the windows, folded by key.
  const windows = new WatermarkWindows();
  const folded = new Map<number, number>();
  const low: LowWatermark = { kind: 'low', slot: 's', backfill: 'b', table: TABLE };
  for (const item of wal) {
    if (item.k === 'low') windows.open(low, item.lsn);
    else if (item.k === 'change') {
      const row = textRow({ id: item.id, v: item.v });
      windows.observe(TABLE, rowKey(row, ['id']));
      if (item.op === 'd') folded.delete(item.id);
      else folded.set(item.id, item.v);
    } else {
      const data: ChunkData = {
        columns: ['id', 'v'],
        types: ['integer', 'integer'],
        rows: chunkRowsText(item.rows.map(([id, v]) => [String(id), String(v)])),
      };
      for (const r of close(windows, ['id'], data)!) {
        const t = typedRow(r) as { id: number; v: number };
        folded.set(t.id, t.v);
      }
    }
  }
  return { table, folded };
}

describe('backfill watermark windows (DBLog)', () => {
  it('folding changes and reads by key gives the table, whatever commits around each chunk', () => {
    const op = fc.tuple(
      fc.integer({ min: 0, max: 1 }),
      fc.integer({ min: 0, max: 40 }),
      fc.integer({ min: 0, max: 1000 }),
    );
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 40 }), { maxLength: 30 }),
        fc.array(
          fc.record({
            live: fc.array(op, { maxLength: 6 }),
            beforeRead: fc.integer({ min: 0, max: 6 }),
            afterRead: fc.integer({ min: 0, max: 6 }),
          }),
          { minLength: 1, maxLength: 40 },
        ),
        fc.integer({ min: 1, max: 7 }),
        (keys, steps, chunkSize) => {
          // enough steps to finish the keyset walk
          const all = [
            ...steps,
            ...Array.from({ length: 50 }, () => ({ live: [], beforeRead: 0, afterRead: 0 })),
          ];
          const { table, folded } = simulate(new Map(keys.map((k) => [k, k * 10])), all, chunkSize);
          expect([...folded].sort((a, b) => a[0] - b[0])).toEqual([...table].sort((a, b) => a[0] - b[0]));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('drops a chunk row whose key an update changed from or to inside the window', () => {
    const w = new WatermarkWindows();
    w.open({ kind: 'low', slot: 's', backfill: 'b', table: TABLE }, 10n);
    w.observe(TABLE, '2', '1'); // UPDATE ... SET id = 2 WHERE id = 1
    w.observe('public.other', '3');
    const rows = close(w, ['id'], {
      columns: ['id'],
      types: ['integer'],
      rows: chunkRowsText([['1'], ['2'], ['3']]),
    })!;
    expect(rows.map((r) => typedRow(r))).toEqual([{ id: 3 }]);
  });

  it('keeps every row in ctid mode (no key), and none after a TRUNCATE in the window', () => {
    const w = new WatermarkWindows();
    const data: ChunkData = { columns: ['a'], types: ['text'], rows: chunkRowsText([['x'], [null]]) };
    w.open({ kind: 'low', slot: 's', backfill: 'b', table: TABLE }, 1n);
    w.observe(TABLE, 'x');
    expect(close(w, [], data)!.map((r) => typedRow(r))).toEqual([{ a: 'x' }, { a: null }]);
    w.open({ kind: 'low', slot: 's', backfill: 'b', table: TABLE }, 2n);
    w.truncate(TABLE);
    expect(close(w, [], data)).toEqual([]);
    expect(close(w, [], data)).toBeUndefined(); // no window open
  });

  it('holds the slot at the oldest open low watermark until its window closes or its backfill ends', () => {
    const w = new WatermarkWindows();
    expect(w.holdLsn()).toBeNull();
    w.open({ kind: 'low', slot: 's', backfill: 'a', table: 'public.x' }, 50n);
    w.open({ kind: 'low', slot: 's', backfill: 'b', table: 'public.y' }, 70n);
    expect(w.holdLsn()).toBe(50n);
    w.open({ kind: 'low', slot: 's', backfill: 'a', table: 'public.x' }, 90n); // re-opened after a restart
    expect(w.holdLsn()).toBe(70n);
    w.end('b');
    expect(w.holdLsn()).toBe(90n);
    w.end('a');
    expect(w.holdLsn()).toBeNull();
    expect(w.watches('public.x')).toBe(false);
  });

  it('converts chunk text values as the decoders do (int8 and numeric as strings, jsonb as printed)', () => {
    const row: Row = chunkRow(
      ['id', 'big', 'j', 'ts', 'b', 'n'],
      ['integer', 'bigint', 'jsonb', 'timestamp with time zone', 'boolean', 'numeric(10,2)'],
      ['7', '9007199254740993', '{"a": [1]}', '2026-01-02 03:04:05.123456+00', 't', null],
    );
    expect(row.values).toEqual([
      '7',
      '"9007199254740993"',
      '{"a": [1]}', // as the stream's decoders splice jsonb (value-json.ts)
      '"2026-01-02T03:04:05.123456+00:00"',
      'true',
      'null',
    ]);
    expect(rowKey(row, ['id'])).toBe('7');
    expect(rowKey(row, ['id', 'big'])).toBe('7\u00009007199254740993');
    expect(rowKey(row, ['n'])).toBeUndefined();
  });

  it('parses its own watermark messages and refuses malformed ones', () => {
    expect(parseWatermark(lowWatermark('s', 'b', TABLE))).toEqual({
      kind: 'low',
      slot: 's',
      backfill: 'b',
      table: TABLE,
    });
    expect(() => parseWatermark('{"kind":"high","slot":"s","backfill":"b","table":"t"}')).toThrow(/nonce/);
    const small = '{"kind":"high","slot":"s","backfill":"b","table":"t","nonce":"n","key":["id"],"count":3}';
    expect(parseWatermark(small)).toEqual({ ...high(['id']), table: 't', count: 3 });
    expect(() => parseWatermark(small.replace('"count":3', '"count":-1'))).toThrow(/count/);
    // Written before the rows left the WAL: a replay across the upgrade still finds them inline.
    const inline = parseWatermark(
      '{"kind":"high","slot":"s","backfill":"b","table":"t","nonce":"n","key":["id"],' +
        '"columns":["id"],"types":["integer"],"rows":[["1"],["2"]]}',
    );
    expect(inline).toMatchObject({ count: 2, inline: { columns: ['id'], rows: '[["1"],["2"]]' } });
    expect(() => parseWatermark('nope')).toThrow(/not JSON/);
  });
});

describe('checkpoint tracker hold (an open backfill window)', () => {
  it('keeps the confirmed LSN at the hold, never moves it back, and catches up when released', () => {
    const t = new CheckpointTracker(['a'], 100n);
    t.begin();
    const e = t.event(1);
    t.commit(200n);
    t.hold(150n);
    t.markDurable('a', e);
    expect(t.confirmedLsn()).toBe(150n);
    t.keepalive(400n);
    expect(t.confirmedLsn()).toBe(150n);
    t.hold(120n); // below what is confirmed: stays
    expect(t.confirmedLsn()).toBe(150n);
    t.hold(null);
    expect(t.confirmedLsn()).toBe(400n);
  });

  it('keeps holding a closed window until its high watermark transaction is delivered', () => {
    const t = new CheckpointTracker(['a'], 100n);
    t.begin(); // chunk k's high watermark transaction, its reads not yet durable
    const e = t.event(1);
    t.commit(200n);
    t.hold(210n); // chunk k+1's low watermark (read while chunk k is emitted), a transaction without events
    t.begin();
    t.commit(220n);
    t.holdUntilDelivered(210n, 300n); // chunk k+1's high watermark closes the window...
    t.hold(null);
    t.begin(); // ...in a transaction committed at 300, still open
    const e2 = t.event(1);
    t.markDurable('a', e);
    // Not 220: a restart there would skip the low watermark and meet the high one without its window.
    expect(t.confirmedLsn()).toBe(210n);
    t.commit(310n);
    t.markDurable('a', e2);
    expect(t.confirmedLsn()).toBe(310n);
  });
});
