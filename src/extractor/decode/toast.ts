import type { Row, RowChange } from './changes.ts';
import type { TableInfo } from './catalog.ts';
import { emptyRow, jsonKey, valueText } from './row-json.ts';

export interface ToastResult {
  row: Row;
  unchangedToast: string[];
  /** A non-TOASTable column is missing: the cached table shape is stale (ALTER TABLE); reload it. */
  stale: boolean;
}

/**
 * wal2json leaves unchanged TOAST columns out of an UPDATE. Under REPLICA IDENTITY FULL the old row
 * has them, so we fill them in; otherwise we mark them (`unchanged_toast`), never leaving a silent gap.
 * pgoutput marks them itself (`change.unchangedToast`), and the same filling applies.
 */
/** Whether completeToast has anything to do (most changes: no, and then it need not run). */
export function toastToComplete(change: RowChange, info: TableInfo): boolean {
  return (
    (change.unchangedToast !== undefined && change.unchangedToast.length > 0) ||
    (change.kind === 'update' && info.columns.length > (change.new?.keys.length ?? 0))
  );
}

export function completeToast(change: RowChange, info: TableInfo): ToastResult {
  const row = change.new ?? emptyRow();
  const missing: string[] = [];
  let stale = false;
  const declared = change.unchangedToast;
  if (declared && declared.length > 0) {
    missing.push(...declared);
  } else if (change.kind === 'update' && info.columns.length > row.keys.length) {
    for (const c of info.columns) {
      if (row.keys.indexOf(jsonKey(c.name)) >= 0) continue;
      if (!c.toastable) stale = true;
      missing.push(c.name);
    }
  }
  if (missing.length === 0) return { row, unchangedToast: [], stale };
  const out: Row = { keys: row.keys.slice(), values: row.values.slice() };
  const unchanged: string[] = [];
  for (const name of missing) {
    const old = valueText(change.old, name);
    if (old !== undefined) {
      out.keys.push(jsonKey(name));
      out.values.push(old);
    } else unchanged.push(name);
  }
  return { row: out, unchangedToast: unchanged, stale };
}
