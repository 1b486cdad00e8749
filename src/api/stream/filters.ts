import { isLsnText, parseEventId, parseLsn, type Position } from '../../util/lsn.ts';

/** Query filters shared by Stream and Snapshot. Pure: parsed and matched without I/O. */
export interface EventFilter {
  tables: Set<string> | null;
  types: Set<string> | null;
  workspaces: Set<string> | null;
}

export class FilterError extends Error {
  readonly statusCode = 400;
}

function list(v: string | undefined): Set<string> | null {
  if (v === undefined || v === '') return null;
  const items = v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return items.length ? new Set(items) : null;
}

export function parseFilter(q: { table?: string; type?: string; workspace?: string }): EventFilter {
  const tables = list(q.table);
  if (tables)
    for (const t of tables)
      if (!/^[A-Za-z0-9_$]+(\.[A-Za-z0-9_$]+)?$/.test(t))
        throw new FilterError(`bad table filter ${JSON.stringify(t)}: expected table or schema.table`);
  const types = list(q.type);
  if (types)
    for (const t of types)
      if (!/^[a-z_]+\.[a-z_*]+$/.test(t))
        throw new FilterError(`bad type filter ${JSON.stringify(t)}: expected e.g. task.created or row.*`);
  return { tables, types, workspaces: list(q.workspace) };
}

/** Resume point: `fromLsn` (commit-LSN watermark, inclusive) or a Last-Event-ID (exclusive). */
export function parseResume(fromLsn: string | undefined, lastEventId: string | undefined): Position | null {
  if (lastEventId) {
    try {
      return parseEventId(lastEventId);
    } catch (err) {
      throw new FilterError(`bad Last-Event-ID: ${(err as Error).message}`);
    }
  }
  if (fromLsn === undefined || fromLsn === '') return null;
  if (!isLsnText(fromLsn))
    throw new FilterError(`bad fromLsn ${JSON.stringify(fromLsn)}: expected an LSN like 0/16B3748`);
  // Every event of a transaction committed at or after fromLsn: strictly after (fromLsn, -1).
  return { commitLsn: parseLsn(fromLsn), seq: -1 };
}

interface EventLike {
  type?: string;
  subject?: string;
  data?: {
    schema?: string;
    table?: string;
    after?: Record<string, unknown> | null;
    before?: Record<string, unknown> | null;
  };
}

export function matches(f: EventFilter, e: EventLike, workspaceColumn: string, root?: string): boolean {
  if (f.types) {
    const t = e.type ?? '';
    const family = t.slice(0, t.indexOf('.')) + '.*';
    if (!f.types.has(t) && !f.types.has(family)) return false;
  }
  if (f.tables) {
    const d = e.data ?? {};
    const name = `${d.schema}.${d.table}`;
    const subjRoot = root ?? (e.subject ?? '').split('/')[0] ?? '';
    if (
      !f.tables.has(name) &&
      !f.tables.has(d.table ?? '') &&
      !f.tables.has(subjRoot) &&
      !f.tables.has(subjRoot.split('.')[1] ?? '')
    ) {
      return false;
    }
  }
  if (f.workspaces) {
    const row = e.data?.after ?? e.data?.before ?? {};
    const w = row[workspaceColumn];
    if (w === undefined || w === null || !f.workspaces.has(String(w))) return false;
  }
  return true;
}
