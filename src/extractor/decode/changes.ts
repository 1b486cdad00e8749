import type { Lsn } from '../../util/lsn.ts';

/**
 * A decoded row as JSON text: per column, its name as a JSON string (`"id"`) and the JSON of its
 * typed value (values.ts has the type mapping: int8/numeric as strings, json as JSON, timestamps ISO,
 * ...). Text, not JS values, because the event carries the row as JSON: the decoder encodes each
 * value once (wal2json: mostly slices of its own output) and nothing re-encodes it; parallel arrays,
 * not an object keyed by column name, because building such objects per change is the costly part.
 * row-json.ts reads values back where the mapper needs them.
 */
export interface Row {
  /** Never changed in place: a decoder may give many rows one keys array (pgoutput does). */
  readonly keys: string[];
  readonly values: string[];
}

/**
 * The columns of a row change as its plugin shows them: wal2json's `columns` (names and types of
 * each change, include-types), or pgoutput's Relation message. Names and types are JSON string texts
 * (`"id"`, `"integer"`), as the decoders have them: parsed only when the shape is new.
 */
export interface ChangeShape {
  readonly keys: readonly string[];
  readonly types: readonly string[];
  /**
   * The list may lack columns: a wal2json update leaves out unchanged TOAST values, so a toastable
   * column missing from it may still be there (pgoutput says so itself: its shapes are never partial).
   */
  readonly partial: boolean;
}

export interface BeginChange {
  kind: 'begin';
  xid: number;
  /** LSN of the commit record: known at BEGIN, so every event of the transaction gets a stable id. */
  commitLsn: Lsn;
  /**
   * End of the transaction (wal2json `nextlsn`). pgoutput's Begin does not carry it: there it is
   * `final_lsn`, a lower bound. Only CommitChange.endLsn (pgoutput's end_lsn) is ever confirmed.
   */
  endLsn: Lsn;
  /** Commit time, ISO-8601. */
  commitTime: string;
}

export interface CommitChange {
  kind: 'commit';
  commitLsn: Lsn;
  endLsn: Lsn;
}

export interface RowChange {
  kind: 'insert' | 'update' | 'delete';
  /** LSN of the change as Postgres writes it (X/Y, upper-case hex). */
  lsn: string;
  schema: string;
  table: string;
  /** New row (insert/update). Columns Postgres did not send (unchanged TOAST) are absent. */
  new: Row | null;
  /** Old row: replica identity columns, or the whole row under REPLICA IDENTITY FULL. */
  old: Row | null;
  /** Primary key columns, when the plugin tells. */
  pk?: string[];
  /** Columns known to be unchanged TOAST values that Postgres did not send (pgoutput says so itself). */
  unchangedToast?: string[];
  /** The table's columns as this change shows them (wal2json inserts and updates, every pgoutput change). */
  shape?: ChangeShape;
}

/**
 * A row a backfill read (docs/backfill.md): not decoded from the WAL but carried by a high watermark
 * message, and mapped like an insert with op "r" (`row.read`, `<role>.read`).
 */
export interface ReadChange {
  kind: 'read';
  /** LSN of the high watermark message. */
  lsn: string;
  schema: string;
  table: string;
  new: Row;
  old: null;
  pk?: string[];
  unchangedToast?: undefined;
}

export interface TruncateChange {
  kind: 'truncate';
  lsn: string;
  schema: string;
  table: string;
}

export interface MessageChange {
  kind: 'message';
  lsn: Lsn;
  transactional: boolean;
  prefix: string;
  content: string;
}

/** Relation metadata (pgoutput) or anything else that carries no data. */
export interface NoopChange {
  kind: 'noop';
}

export type Change = BeginChange | CommitChange | RowChange | TruncateChange | MessageChange | NoopChange;

/** A change that could not be decoded: reported with its LSN, and it stops the stream. */
export class DecodeError extends Error {
  readonly lsn: string;
  constructor(lsn: string, message: string) {
    super(`cannot decode the change at LSN ${lsn}: ${message}`);
    this.name = 'DecodeError';
    this.lsn = lsn;
  }
}
