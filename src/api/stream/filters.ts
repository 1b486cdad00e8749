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

export interface EventLike {
  type?: string;
  subject?: string;
  data?: {
    op?: string;
    schema?: string;
    table?: string;
    after?: Record<string, unknown> | null;
    before?: Record<string, unknown> | null;
  };
}

function typeMatches(types: Set<string>, t: string): boolean {
  return types.has(t) || types.has(t.slice(0, t.indexOf('.')) + '.*');
}

function tableMatches(tables: Set<string>, e: EventLike, root?: string): boolean {
  const d = e.data ?? {};
  const subjRoot = root ?? (e.subject ?? '').split('/')[0] ?? '';
  return (
    tables.has(`${d.schema}.${d.table}`) ||
    tables.has(d.table ?? '') ||
    tables.has(subjRoot) ||
    tables.has(subjRoot.split('.')[1] ?? '')
  );
}

/** Whether an event passes the filter, judged on the event alone (no memory: see StreamFilter). */
export function matches(f: EventFilter, e: EventLike, workspaceColumn: string, root?: string): boolean {
  if (f.types && !typeMatches(f.types, e.type ?? '')) return false;
  if (f.tables && !tableMatches(f.tables, e, root)) return false;
  if (f.workspaces) {
    const row = e.data?.after ?? e.data?.before ?? {};
    const w = row[workspaceColumn];
    if (w === undefined || w === null || !f.workspaces.has(String(w))) return false;
  }
  return true;
}

/**
 * What a session does with an event: skip it, send it, or send the client a delete because the row
 * left its workspace scope (`left`: see leftScopeJson).
 */
export type Verdict = 'skip' | 'send' | 'left';

/** The type a delete of this event's row has: `row.delete` for plain rows, `<role>.deleted` for roles. */
export function deleteTypeOf(type: string): string {
  const family = type.slice(0, type.indexOf('.'));
  return family === 'row' || type === 'etl_context.event' ? 'row.delete' : `${family}.deleted`;
}

/**
 * The delete a client gets when a row leaves its workspace: the event's id, subject and positions,
 * a delete type, `op: "d"`, the old row only when the change carried it whole (REPLICA IDENTITY FULL:
 * the client had those values anyway; the new row belongs to another workspace and is never shown),
 * and `"left_scope": true`.
 */
export function leftScopeJson(json: string, workspaceColumn: string): string {
  const e = JSON.parse(json) as Record<string, unknown> & { type: string; data: Record<string, unknown> };
  const before = e.data.before as Record<string, unknown> | null | undefined;
  const whole = before && workspaceColumn in before ? before : null;
  const data: Record<string, unknown> = { ...e.data, op: 'd', before: whole, after: null, left_scope: true };
  delete data.changed;
  delete data.from;
  delete data.to;
  return JSON.stringify({ ...e, type: deleteTypeOf(e.type), data });
}

/** Rows whose workspace membership a session remembers, at most; the oldest are forgotten first. */
export const SCOPE_MEMORY_ROWS = 50_000;

/**
 * A session's filter, exact for workspace scopes at the edges that the event alone cannot decide.
 *
 * The hard case is the default replica identity: a DELETE carries only the key (`before` has no
 * workspace column), and an UPDATE carries no old row at all, so neither says which workspace the
 * row was in. Two ways out were weighed:
 * - carry the workspace in the event: the pipeline would need every row's workspace, i.e. an index
 *   of all rows of every tracked table (unbounded, and empty for rows older than the daemon's start);
 * - remember per session, bounded: what this session's client was sent is what it holds.
 * We remember per session (up to SCOPE_MEMORY_ROWS rows, by subject, which names the row): a
 * key-only delete of a remembered row goes to the session that had it, an update that moves a
 * remembered row out of scope becomes a delete for it (`left`). A key-only delete of a row the
 * session does not remember (it came with a Snapshot, or was forgotten) is sent anyway: deleting a
 * row one does not hold is a no-op for the client, whereas dropping it would leave that row with the
 * client forever. It carries the key only, never row values. Tables known to have no workspace
 * column are never sent to a workspace-scoped session, their TRUNCATEs included. With REPLICA
 * IDENTITY FULL (or an identity index covering the workspace column) the old row tells its workspace
 * and every verdict is exact without memory, including moves of rows this session never saw. TRUNCATE
 * empties every workspace's rows of the table, so it reaches every session whose table filter admits
 * it (when the table has the workspace column).
 */
export class StreamFilter {
  private readonly f: EventFilter;
  private readonly column: string;
  private readonly hasWorkspaceColumn: (schema: string, table: string) => boolean | undefined;
  private readonly maxRows: number;
  /** subject → whether the row is in this session's workspaces, oldest first. */
  private readonly scope = new Map<string, boolean>();

  constructor(
    f: EventFilter,
    workspaceColumn: string,
    hasWorkspaceColumn: (schema: string, table: string) => boolean | undefined = () => undefined,
    maxRows = SCOPE_MEMORY_ROWS,
  ) {
    this.f = f;
    this.column = workspaceColumn;
    this.hasWorkspaceColumn = hasWorkspaceColumn;
    this.maxRows = maxRows;
  }

  /** True when every event passes: the caller can skip parsing the envelope. */
  passesAll(): boolean {
    return !this.f.types && !this.f.tables && !this.f.workspaces;
  }

  rememberedRows(): number {
    return this.scope.size;
  }

  judge(e: EventLike, root?: string): Verdict {
    const f = this.f;
    if (f.tables && !tableMatches(f.tables, e, root)) return 'skip';
    const verdict = f.workspaces ? this.workspaceVerdict(e, f.workspaces) : 'send';
    if (verdict === 'skip' || !f.types) return verdict;
    const type = verdict === 'left' ? deleteTypeOf(e.type ?? '') : (e.type ?? '');
    return typeMatches(f.types, type) ? verdict : 'skip';
  }

  private workspaceVerdict(e: EventLike, workspaces: Set<string>): Verdict {
    const d = e.data ?? {};
    // A TRUNCATE empties every workspace's rows, a schema.changed concerns them all (whole-table
    // events); but a table without the workspace column is never shown to a workspace-scoped session,
    // not even its name (as Snapshot and /v1/api/schemas).
    if (d.op === 't' || d.op === 's' || e.type === 'row.truncate')
      return this.hasWorkspaceColumn(d.schema ?? '', d.table ?? '') === false ? 'skip' : 'send';
    const col = this.column;
    const key = e.subject ?? '';
    const before = d.before ?? null;
    const after = d.after ?? null;
    const member = (row: Record<string, unknown>) => {
      const w = row[col];
      return w !== undefined && w !== null && workspaces.has(String(w));
    };
    // Was the row in scope before this change? The old row tells when it is whole, else memory.
    const wasIn: boolean | undefined = before && col in before ? member(before) : this.scope.get(key);
    if (!after) {
      this.scope.delete(key);
      if (wasIn !== undefined) return wasIn ? 'send' : 'skip';
      if (this.hasWorkspaceColumn(d.schema ?? '', d.table ?? '') === false) return 'skip';
      return 'send'; // unknown row: see the class comment
    }
    const isIn = member(after);
    this.remember(key, isIn);
    if (isIn) return 'send';
    return wasIn ? 'left' : 'skip';
  }

  private remember(key: string, inScope: boolean): void {
    this.scope.delete(key);
    this.scope.set(key, inScope);
    if (this.scope.size > this.maxRows) {
      const oldest = this.scope.keys().next().value;
      if (oldest !== undefined) this.scope.delete(oldest);
    }
  }
}
