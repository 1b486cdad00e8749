import type { Lsn } from '../../util/lsn.ts';
import { type Row, jsonKey, keyOf, converterFor } from '../decode/index.ts';
import type { ChunkData, HighWatermark, LowWatermark } from './messages.ts';

/** One chunk's window: keys of its table the stream changed between the low and high watermark. */
interface Window {
  backfill: string;
  table: string;
  /** Commit LSN of the low watermark's transaction: the slot is never confirmed past it while open. */
  lowLsn: Lsn;
  changed: Set<string>;
  /** A TRUNCATE inside the window: every read of the chunk may be stale. */
  truncated: boolean;
}

/**
 * A row's key as one string, for comparing stream changes with chunk rows (both rows hold values as
 * the same JSON text: values.ts). undefined when a key column is missing or null.
 */
export function rowKey(row: Row, columns: readonly string[]): string | undefined {
  if (columns.length === 1) return keyOf(row, columns[0]!);
  let out = '';
  for (let i = 0; i < columns.length; i++) {
    const part = keyOf(row, columns[i]!);
    if (part === undefined) return undefined;
    out += i === 0 ? part : '\u0000' + part;
  }
  return out;
}

/**
 * Chunk rows (Postgres text forms) → Rows with typed JSON values, as the decoders make them. The
 * converters and key names are looked up once per chunk, and the rows share one key array (nothing
 * changes a read's keys).
 */
export function chunkRowMaker(
  columns: readonly string[],
  types: readonly string[],
): (values: readonly (string | null)[]) => Row {
  const keys = columns.map((c) => jsonKey(c));
  const convert = types.map((t) => converterFor(t));
  const n = columns.length;
  return (values) => {
    const out = new Array<string>(n);
    for (let i = 0; i < n; i++) {
      const v = values[i];
      out[i] = v === null || v === undefined ? 'null' : (JSON.stringify(convert[i]!(v)) ?? 'null');
    }
    return { keys, values: out };
  };
}

/** One chunk row as a Row (chunkRowMaker for a whole chunk). */
export function chunkRow(
  columns: readonly string[],
  types: readonly string[],
  values: readonly (string | null)[],
): Row {
  return chunkRowMaker(columns, types)(values);
}

/** What the stream saw between a chunk's watermarks. */
export interface ClosedWindow {
  /** Commit LSN of the low watermark's transaction. */
  lowLsn: Lsn;
  /** Keys of the table changed in the window. */
  changed: ReadonlySet<string>;
  /** A TRUNCATE inside the window: every read of the chunk may be stale. */
  truncated: boolean;
}

/**
 * The chunk's reads to emit at its high watermark, in key order: every row whose key changed in the
 * window is dropped (the stream already carries a state at least as new), all of them after a
 * TRUNCATE; with no key (ctid mode) none is dropped.
 */
export function chunkReads(data: ChunkData, key: readonly string[], win: ClosedWindow): Row[] {
  if (win.truncated) return [];
  const rows: Row[] = [];
  const make = chunkRowMaker(data.columns, data.types);
  for (const values of data.rows) {
    const row = make(values);
    if (key.length > 0 && win.changed.size > 0) {
      const k = rowKey(row, key);
      if (k !== undefined && win.changed.has(k)) continue;
    }
    rows.push(row);
  }
  return rows;
}

/**
 * The watermark method (DBLog; Debezium's incremental snapshots): per chunk, a low watermark opens a
 * window, the stream records the keys it changes, and at the high watermark every chunk row whose key
 * changed in the window is dropped (the stream already carries a state at least as new); the rest is
 * emitted at the high watermark's position. Folding events by key in delivery order then gives the
 * table. Pure: the pipeline feeds it in stream order.
 */
export class WatermarkWindows {
  private readonly windows = new Map<string, Window>();
  /** Open windows per table, so a change of an unwatched table costs one lookup. */
  private readonly byTable = new Map<string, Window[]>();

  get size(): number {
    return this.windows.size;
  }

  watches(table: string): boolean {
    return this.byTable.has(table);
  }

  /** A low watermark: opens (or re-opens, after a restart) the window of its backfill and table. */
  open(w: LowWatermark, lowLsn: Lsn): void {
    this.remove(`${w.backfill}\u0000${w.table}`);
    const win: Window = {
      backfill: w.backfill,
      table: w.table,
      lowLsn,
      changed: new Set(),
      truncated: false,
    };
    this.windows.set(`${w.backfill}\u0000${w.table}`, win);
    const list = this.byTable.get(w.table);
    if (list) list.push(win);
    else this.byTable.set(w.table, [win]);
  }

  /** A change of `table` touching these keys (old and new key of an update). */
  observe(table: string, key: string | undefined, oldKey?: string): void {
    const list = this.byTable.get(table);
    if (!list) return;
    for (const win of list) {
      if (key !== undefined) win.changed.add(key);
      if (oldKey !== undefined && oldKey !== key) win.changed.add(oldKey);
    }
  }

  truncate(table: string): void {
    for (const win of this.byTable.get(table) ?? []) win.truncated = true;
  }

  /**
   * A high watermark: closes its window and returns what the stream saw in it; undefined when no
   * window is open for it (its low watermark was never seen: the chunk cannot be placed).
   */
  close(h: HighWatermark): ClosedWindow | undefined {
    const id = `${h.backfill}\u0000${h.table}`;
    const win = this.windows.get(id);
    if (!win) return undefined;
    this.remove(id);
    return { lowLsn: win.lowLsn, changed: win.changed, truncated: win.truncated };
  }

  /** The backfill ended: its open windows (a chunk that will never close) are dropped. */
  end(backfill: string): void {
    for (const [id, win] of [...this.windows]) if (win.backfill === backfill) this.remove(id);
  }

  /** The oldest open window's low watermark: the confirmed LSN must not pass it (else a restart could not rebuild the window). */
  holdLsn(): Lsn | null {
    let min: Lsn | null = null;
    for (const win of this.windows.values()) if (min === null || win.lowLsn < min) min = win.lowLsn;
    return min;
  }

  /** Forget every window (a reconnect: Postgres resends from before the oldest one). */
  reset(): void {
    this.windows.clear();
    this.byTable.clear();
  }

  private remove(id: string): void {
    const win = this.windows.get(id);
    if (!win) return;
    this.windows.delete(id);
    const list = this.byTable.get(win.table)!.filter((w) => w !== win);
    if (list.length > 0) this.byTable.set(win.table, list);
    else this.byTable.delete(win.table);
  }
}
