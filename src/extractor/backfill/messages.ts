/**
 * The logical messages a backfill writes into the WAL (pg_logical_emit_message, transactional) and
 * the signal table's trigger writes, as the stream reads them back (docs/backfill.md). Pure.
 */

/** Prefix of the watermark messages (low, high, end). */
export const WATERMARK_PREFIX = 'tag-connector.watermark';
/** Prefix of the messages the `<state-schema>.signals` trigger writes. */
export const SIGNAL_PREFIX = 'tag-connector.signal';

/** Opens a chunk's window: from here on the stream records which keys of the table change. */
export interface LowWatermark {
  kind: 'low';
  slot: string;
  backfill: string;
  table: string;
}

/**
 * Closes the window. The chunk's rows do not travel in the WAL: the runner read them in the same
 * statement and hands them to the stream in memory, and keeps a copy in `<state>.backfill_chunks`
 * (unlogged) for a replay after a crash (docs/backfill.md). `count` is how many rows the chunk read.
 * A high watermark written before that change carries its rows inline (`inline`), so a replay across
 * an upgrade still finds them.
 */
export interface HighWatermark {
  kind: 'high';
  slot: string;
  backfill: string;
  table: string;
  /** Identifies the chunk (its stored rows, and the runner waiting for the stream to reach it). */
  nonce: string;
  /** The key columns the window compares (empty: ctid mode, no key to compare). */
  key: string[];
  count: number;
  inline?: ChunkData;
}

/**
 * A chunk as read: its rows in key order as the JSON text of an array of rows, each an array of the
 * columns' text forms (null for SQL NULL), as the database writes it (chunk-rows.ts reads it).
 */
export interface ChunkData {
  columns: string[];
  types: string[];
  rows: string;
}

/** The backfill ended (done, failed or canceled): any window of it still open is dropped. */
export interface EndWatermark {
  kind: 'end';
  slot: string;
  backfill: string;
}

/** A barrier: once the stream reaches it and the slot is confirmed past it, every chunk before it is durable. */
export interface SyncWatermark {
  kind: 'sync';
  slot: string;
  backfill: string;
  nonce: string;
}

export type Watermark = LowWatermark | HighWatermark | EndWatermark | SyncWatermark;

export interface Signal {
  schema: string;
  id: number;
  type: string;
  data: Record<string, unknown>;
}

export class WatermarkError extends Error {}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

/** Parses a watermark message's content; throws WatermarkError on anything malformed. */
export function parseWatermark(content: string): Watermark {
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(content) as Record<string, unknown>;
  } catch (err) {
    throw new WatermarkError(`watermark is not JSON: ${(err as Error).message}`);
  }
  if (!v || typeof v !== 'object') throw new WatermarkError('watermark is not an object');
  const { kind, slot, backfill } = v;
  if (typeof slot !== 'string' || typeof backfill !== 'string')
    throw new WatermarkError('watermark without slot or backfill');
  if (kind === 'end') return { kind, slot, backfill };
  if (kind === 'sync') {
    if (typeof v.nonce !== 'string') throw new WatermarkError('sync watermark without nonce');
    return { kind, slot, backfill, nonce: v.nonce };
  }
  if (typeof v.table !== 'string') throw new WatermarkError(`${String(kind)} watermark without table`);
  if (kind === 'low') return { kind, slot, backfill, table: v.table };
  if (kind !== 'high') throw new WatermarkError(`unknown watermark kind ${JSON.stringify(kind)}`);
  const { nonce, key } = v;
  if (typeof nonce !== 'string' || !isStringArray(key))
    throw new WatermarkError('high watermark without nonce or key');
  const high: HighWatermark = { kind, slot, backfill, table: v.table, nonce, key, count: 0 };
  if (v.rows !== undefined) {
    if (!Array.isArray(v.rows)) throw new WatermarkError('high watermark: rows is not an array');
    high.count = v.rows.length;
    high.inline = parseChunkData({ ...v, rows: JSON.stringify(v.rows) });
  } else if (typeof v.count === 'number' && Number.isInteger(v.count) && v.count >= 0) high.count = v.count;
  else throw new WatermarkError('high watermark without count');
  return high;
}

/**
 * A chunk's columns, types and rows' JSON text (a stored chunk, or a high watermark's inline one);
 * throws WatermarkError. The rows' shape is checked as they are read (chunk-rows.ts).
 */
export function parseChunkData(v: Record<string, unknown>): ChunkData {
  const { columns, types, rows } = v;
  if (!isStringArray(columns) || !isStringArray(types))
    throw new WatermarkError('chunk without columns or types');
  if (types.length !== columns.length) throw new WatermarkError('chunk: types do not match columns');
  if (typeof rows !== 'string') throw new WatermarkError('chunk: rows are not JSON text');
  return { columns, types, rows };
}

export function lowWatermark(slot: string, backfill: string, table: string): string {
  return JSON.stringify({ kind: 'low', slot, backfill, table } satisfies LowWatermark);
}

export function syncWatermark(slot: string, backfill: string, nonce: string): string {
  return JSON.stringify({ kind: 'sync', slot, backfill, nonce } satisfies SyncWatermark);
}

export function endWatermark(slot: string, backfill: string): string {
  return JSON.stringify({ kind: 'end', slot, backfill } satisfies EndWatermark);
}

/** Parses a signal message; undefined when it is malformed (a signal row is user input). */
export function parseSignal(content: string): Signal | undefined {
  try {
    const v = JSON.parse(content) as Partial<Signal>;
    if (typeof v.schema !== 'string' || typeof v.id !== 'number' || typeof v.type !== 'string')
      return undefined;
    const data = v.data && typeof v.data === 'object' && !Array.isArray(v.data) ? v.data : {};
    return { schema: v.schema, id: v.id, type: v.type, data };
  } catch {
    return undefined;
  }
}
