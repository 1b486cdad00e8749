import { isToastable, type ColumnInfo } from '../decode/index.ts';
import type { Position } from '../../util/lsn.ts';
import {
  decideShape,
  knownShape,
  recordedAround,
  showsKnown,
  type ChangeShape,
  type KnownShape,
  type ShapeColumn,
  type ShapeEntry,
} from './shape.ts';

/**
 * Where the tables' shapes are recorded (the state schema: pg-store.ts). An entry is a fact about the
 * WAL (from this position on, the table had these columns), so recording one twice is harmless.
 */
export interface ShapeStore {
  /** The table's entries at or before `position` (the newest two are enough). */
  around(table: string, position: Position): Promise<ShapeEntry[]>;
  /** Records an entry, durably, unless one is recorded at that position already. */
  record(table: string, entry: ShapeEntry): Promise<void>;
}

/** A table's columns changed: the `schema.changed` event to emit, before the change that showed it. */
export interface ShapeChange {
  before: ShapeColumn[];
  after: ShapeColumn[];
}

/**
 * Tells, for each row change of a tracked table, whether the table's columns changed since its last
 * change, deterministically from the WAL, so that a replay from any point emits the same
 * `schema.changed` events at the same positions (docs/governance.md "Schema changes"):
 * - the columns before a change are the last ones seen in this session, or, for a table's first change
 *   in a session, the newest recorded entry strictly before the change's position;
 * - an entry is recorded (awaited) before the event and the change are handed on, for a change of
 *   columns and for a table's first sight alike; nothing at or after that position can therefore be
 *   confirmed to PostgreSQL before its entry is durable, and a replay, which starts at the confirmed
 *   position, finds every entry it needs;
 * - entries beyond the replay's start (a run that got further before it died) are ignored by the
 *   strictly-before lookup, and recomputed the same.
 * The position of a change's entry is the seq the change would have had (`seq`): the event takes it and
 * the change the next one. Same-shape changes cost a comparison of the column texts, nothing else.
 */
export class ShapeTracker {
  private readonly store: ShapeStore;
  private readonly known = new Map<string, KnownShape>();

  constructor(store: ShapeStore) {
    this.store = store;
  }

  /**
   * The change of columns a change shows, if any: null at once when the table's known columns match
   * (the common case), else a promise. `catalog`: the table's columns now, read only for a table's
   * first sight through a change that may lack unchanged TOAST values.
   */
  check(
    table: string,
    shape: ChangeShape,
    position: Position,
    catalog?: () => ShapeColumn[] | undefined,
  ): ShapeChange | null | Promise<ShapeChange | null> {
    const known = this.known.get(table);
    if (known && showsKnown(known, shape)) {
      // the same texts: compare by identity next time (pgoutput gives every change its Relation's)
      known.keys = shape.keys;
      known.types = shape.types;
      return null;
    }
    if (known) {
      const d = decideShape(known.columns, undefined, shape);
      if (!d.changed) return null; // a partial change (TOAST left out) of the same columns
      return this.store.record(table, { position, columns: d.columns }).then(() => {
        this.known.set(table, knownShape(d.columns));
        return { before: known.columns, after: d.columns };
      });
    }
    return this.firstSight(table, shape, position, catalog);
  }

  private async firstSight(
    table: string,
    shape: ChangeShape,
    position: Position,
    catalog?: () => ShapeColumn[] | undefined,
  ): Promise<ShapeChange | null> {
    const { before, at } = recordedAround(await this.store.around(table, position), position);
    const d = decideShape(before?.columns, at?.columns, shape, shape.partial ? catalog?.() : undefined);
    if (d.record) await this.store.record(table, { position, columns: d.columns });
    this.known.set(table, knownShape(d.columns));
    return d.changed && before ? { before: before.columns, after: d.columns } : null;
  }

  /**
   * The table's columns as of its last change, as the TOAST completion wants them (name, type,
   * toastable): from the WAL, so that an update is completed the same way on every replay, whatever
   * the catalog says by then (a column dropped since, a cache from before an ALTER).
   */
  columnInfo(table: string): ColumnInfo[] | undefined {
    const known = this.known.get(table);
    if (!known) return undefined;
    return (known.info ??= known.columns.map((c) => ({ ...c, toastable: isToastable(c.type) })));
  }

  /** Forgets the session's shapes: a reconnection replays from the confirmed position. */
  reset(): void {
    this.known.clear();
  }
}
