import type { Lsn } from '../../util/lsn.ts';
import { type Row, keyOf } from '../decode/index.ts';
import { ChunkRows, chunkRowsText } from './chunk-rows.ts';
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

/** One chunk row (its columns' text forms, null for NULL) as a Row, as scanChunkRows makes it (tests). */
export function chunkRow(
  columns: readonly string[],
  types: readonly string[],
  values: readonly (string | null)[],
): Row {
  return new ChunkRows(chunkRowsText([values]), columns, types).next()!;
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
 * The chunk's reads to emit at its high watermark, in key order, one at a time (ChunkRows: why):
 * every row whose key changed in the window is dropped (the stream already carries a state at least
 * as new), all of them after a TRUNCATE; with no key (ctid mode) none is dropped.
 */
export class ChunkReadCursor {
  private readonly rows: ChunkRows | undefined;
  private readonly key: readonly string[];
  private readonly changed: ReadonlySet<string> | undefined;
  /** Reads given so far. */
  emitted = 0;

  /** No data or no window: nothing to read (the chunk is lost). */
  constructor(data: ChunkData | undefined, key: readonly string[], win: ClosedWindow | undefined) {
    this.rows =
      data && win && !win.truncated ? new ChunkRows(data.rows, data.columns, data.types) : undefined;
    this.key = key;
    this.changed = key.length > 0 && win && win.changed.size > 0 ? win.changed : undefined;
  }

  next(): Row | undefined {
    const rows = this.rows;
    if (!rows) return undefined;
    for (let row = rows.next(); row; row = rows.next()) {
      if (this.changed) {
        const k = rowKey(row, this.key);
        if (k !== undefined && this.changed.has(k)) continue;
      }
      this.emitted++;
      return row;
    }
    return undefined;
  }
}

/** All of a chunk's reads (ChunkReadCursor) at once (tests). */
export function chunkReads(data: ChunkData, key: readonly string[], win: ClosedWindow): Row[] {
  const cursor = new ChunkReadCursor(data, key, win);
  const rows: Row[] = [];
  for (let row = cursor.next(); row; row = cursor.next()) rows.push(row);
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
