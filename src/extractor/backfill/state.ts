/** A backfill's state as the API, /info and `backfill status` show it (docs/backfill.md). Pure. */

export const BACKFILL_STATES = ['queued', 'running', 'done', 'failed', 'canceled'] as const;
export type BackfillStateName = (typeof BACKFILL_STATES)[number];

export interface BackfillTableState {
  table: string;
  state: 'queued' | 'running' | 'done';
  rows: number;
  chunks: number;
  lastKey: string[] | null;
  estimatedRows: number | null;
  startedAt: string | null;
  finishedAt: string | null;
  /** Rows per second since the table started (until it finished). */
  rate: number | null;
}

export interface BackfillState {
  id: string;
  state: BackfillStateName;
  tables: BackfillTableState[];
  where: string | null;
  chunkSize: number;
  /** api, cli, signal or initial */
  origin: string;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  error: string | null;
  rows: number;
  rate: number | null;
}

/** The row of sql.ts `selectBackfills`. */
export interface BackfillRow {
  id: string;
  state: BackfillStateName;
  where_sql: string | null;
  chunk_size: number;
  origin: string;
  error: string | null;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  tables: {
    table: string;
    state: BackfillTableState['state'];
    rows: number | string;
    chunks: number;
    lastKey: string[] | null;
    estimatedRows: number | string | null;
    startedAt: string | null;
    finishedAt: string | null;
  }[];
}

function iso(d: Date | string | null): string | null {
  if (d === null) return null;
  return (typeof d === 'string' ? new Date(d) : d).toISOString();
}

/** Rows per second over [start, end or now], one decimal; null before it started. */
export function rate(rows: number, start: string | null, end: string | null, now: number): number | null {
  if (start === null) return null;
  const seconds = ((end ? Date.parse(end) : now) - Date.parse(start)) / 1000;
  return seconds > 0 ? Math.round((rows / seconds) * 10) / 10 : null;
}

export function toState(row: BackfillRow, now = Date.now()): BackfillState {
  const tables = row.tables.map((t): BackfillTableState => {
    const startedAt = iso(t.startedAt);
    const finishedAt = iso(t.finishedAt);
    const rows = Number(t.rows);
    return {
      table: t.table,
      state: t.state,
      rows,
      chunks: t.chunks,
      lastKey: t.lastKey,
      estimatedRows: t.estimatedRows === null ? null : Number(t.estimatedRows),
      startedAt,
      finishedAt,
      rate: rate(rows, startedAt, finishedAt, now),
    };
  });
  const rows = tables.reduce((n, t) => n + t.rows, 0);
  const startedAt = iso(row.started_at);
  const finishedAt = iso(row.finished_at);
  return {
    id: row.id,
    state: row.state,
    tables,
    where: row.where_sql,
    chunkSize: row.chunk_size,
    origin: row.origin,
    createdAt: iso(row.created_at)!,
    startedAt,
    finishedAt,
    error: row.error,
    rows,
    rate: rate(rows, startedAt, finishedAt, now),
  };
}

/** Rows still to read by estimate, over the tables not done (for the remaining-estimate gauge). */
export function remainingEstimate(states: readonly BackfillState[]): number {
  let n = 0;
  for (const b of states) {
    if (b.state !== 'running' && b.state !== 'queued') continue;
    for (const t of b.tables)
      if (t.state !== 'done' && t.estimatedRows !== null) n += Math.max(0, t.estimatedRows - t.rows);
  }
  return n;
}

/** A progress bar line for `backfill status` on a TTY. */
export function progressLine(t: BackfillTableState, width = 30): string {
  const total = t.state === 'done' ? t.rows : Math.max(t.estimatedRows ?? 0, t.rows);
  const share = total > 0 ? Math.min(1, t.rows / total) : t.state === 'done' ? 1 : 0;
  const filled = Math.round(share * width);
  const bar = '#'.repeat(filled) + '-'.repeat(width - filled);
  const pct = `${Math.round(share * 100)}%`.padStart(4);
  const rateText = t.rate !== null ? ` ${Math.round(t.rate)} rows/s` : '';
  return `${t.table.padEnd(32)} [${bar}] ${pct} ${t.rows}/${t.estimatedRows ?? '?'} ${t.state}${rateText}`;
}
