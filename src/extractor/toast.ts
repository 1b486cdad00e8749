import type { Row, RowChange } from './changes.ts';
import type { TableInfo } from './catalog.ts';

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
export function completeToast(change: RowChange, info: TableInfo): ToastResult {
  const row = change.new ?? {};
  const missing: string[] = [];
  let stale = false;
  const declared = change.unchangedToast;
  if (declared && declared.length > 0) {
    missing.push(...declared);
  } else if (change.kind === 'update' && info.columns.length > 0) {
    for (const c of info.columns) {
      if (c.name in row) continue;
      if (!c.toastable) stale = true;
      missing.push(c.name);
    }
  }
  if (missing.length === 0) return { row, unchangedToast: [], stale };
  const out: Row = { ...row };
  const unchanged: string[] = [];
  for (const name of missing) {
    const old = change.old?.[name];
    if (old !== undefined) out[name] = old;
    else {
      delete out[name];
      unchanged.push(name);
    }
  }
  return { row: out, unchangedToast: unchanged, stale };
}
