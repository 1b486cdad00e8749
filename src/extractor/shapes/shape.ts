import { isToastable, type ChangeShape } from '../decode/index.ts';
import { comparePosition, type Position } from '../../util/lsn.ts';

export type { ChangeShape };

/** One column of a table's shape: its name and its type as `format_type` prints it. */
export interface ShapeColumn {
  name: string;
  type: string;
}

/** A table's shape as last seen: its columns, and the texts they were read from (the fast check). */
export interface KnownShape {
  columns: ShapeColumn[];
  keys: readonly string[];
  types: readonly string[];
  /** The columns with their toastability (tracker.ts `columnInfo`), made on first use. */
  info?: { name: string; type: string; toastable: boolean }[];
}

export function knownShape(columns: ShapeColumn[]): KnownShape {
  return {
    columns,
    keys: columns.map((c) => JSON.stringify(c.name)),
    types: columns.map((c) => JSON.stringify(c.type)),
  };
}

export function columnsOf(shape: ChangeShape): ShapeColumn[] {
  return shape.keys.map((k, i) => ({
    name: JSON.parse(k) as string,
    type: JSON.parse(shape.types[i]!) as string,
  }));
}

/** Whether a change shows exactly the known columns (the common case: no allocation). */
export function showsKnown(known: KnownShape, shape: ChangeShape): boolean {
  if (known.keys === shape.keys && known.types === shape.types) return true;
  const n = known.keys.length;
  if (shape.keys.length !== n) return false;
  for (let i = 0; i < n; i++)
    if (known.keys[i] !== shape.keys[i] || known.types[i] !== shape.types[i]) return false;
  return true;
}

/**
 * The table's columns at a change, given the columns before it (`prev`, none for a first sight).
 * A full shape is what the change shows. A partial one (wal2json update) is read against `prev`:
 * a toastable column of `prev` it lacks is taken as an unchanged TOAST value, still there; a
 * non-toastable one it lacks is gone (such a value is always sent); columns it shows keep its type
 * and order, new ones come after. Pure, so a replay from the same `prev` reaches the same columns.
 */
export function shapeAt(prev: readonly ShapeColumn[] | undefined, shape: ChangeShape): ShapeColumn[] {
  const shown = columnsOf(shape);
  if (!shape.partial || !prev) return shown;
  const byName = new Map(shown.map((c) => [c.name, c]));
  const out: ShapeColumn[] = [];
  const taken = new Set<string>();
  for (const c of prev) {
    const s = byName.get(c.name);
    if (s) {
      out.push(s);
      taken.add(c.name);
    } else if (isToastable(c.type)) out.push(c);
  }
  for (const c of shown) if (!taken.has(c.name)) out.push(c);
  return out;
}

/** Same columns with the same types (order aside: partitions of one table may order them apart). */
export function sameColumns(a: readonly ShapeColumn[], b: readonly ShapeColumn[]): boolean {
  if (a.length !== b.length) return false;
  const types = new Map(a.map((c) => [c.name, c.type]));
  return b.every((c) => types.get(c.name) === c.type);
}

/** Names of the columns added, dropped or retyped from `before` to `after` (after's order, then dropped). */
export function changedColumns(before: readonly ShapeColumn[], after: readonly ShapeColumn[]): string[] {
  const was = new Map(before.map((c) => [c.name, c.type]));
  const now = new Set(after.map((c) => c.name));
  const out = after.filter((c) => was.get(c.name) !== c.type).map((c) => c.name);
  for (const c of before) if (!now.has(c.name)) out.push(c.name);
  return out;
}

/** A recorded shape: the table's columns from `position` (the first change that showed them) on. */
export interface ShapeEntry {
  position: Position;
  columns: ShapeColumn[];
}

/**
 * What the record says at `position`: the shape before it (the newest entry strictly before) and
 * the entry at it, if a run got that far before. `entries` may come in any order.
 */
export function recordedAround(
  entries: readonly ShapeEntry[],
  position: Position,
): { before?: ShapeEntry; at?: ShapeEntry } {
  let before: ShapeEntry | undefined;
  let at: ShapeEntry | undefined;
  for (const e of entries) {
    const c = comparePosition(e.position, position);
    if (c === 0) at = e;
    else if (c < 0 && (!before || comparePosition(e.position, before.position) > 0)) before = e;
  }
  return { ...(before ? { before } : {}), ...(at ? { at } : {}) };
}

/**
 * The decision at a table's change, from what is known before it: `prev` the columns before the
 * change (none: never seen), `at` the columns a former run recorded at this very position.
 * - never seen: the change's columns become the baseline (a record, no event); a partial change is
 *   read against `catalog` (the table's columns now) so that a TOAST value it left out is not missed;
 * - seen: the columns at the change; an event when they differ from `prev` (else `prev` stays, so
 *   that the known list, and the `before` of a later event, does not depend on where a replay began).
 * A record at the position wins over a recomputation (a baseline read from a partial update the
 * first time keeps what it was), so every replay decides as the first pass did.
 */
export function decideShape(
  prev: readonly ShapeColumn[] | undefined,
  at: readonly ShapeColumn[] | undefined,
  shape: ChangeShape,
  catalog?: readonly ShapeColumn[],
): { columns: ShapeColumn[]; changed: boolean; record: boolean } {
  const columns = at ? [...at] : shapeAt(prev ?? catalog, shape);
  if (!prev) return { columns, changed: false, record: !at };
  // the same columns (in another order, a partition's): the known list stays as it was
  if (sameColumns(prev, columns)) return { columns: [...prev], changed: false, record: false };
  return { columns, changed: true, record: !at };
}
