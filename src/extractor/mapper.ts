import type { ChangeData, CloudEvent, Op } from '../events/envelope.ts';
import { formatLsn, type Lsn } from '../util/lsn.ts';
import type { Row, RowChange, TruncateChange } from './changes.ts';
import type { RoleDef, ResolvedRoles } from './roles.ts';

/** The transaction a change belongs to. */
export interface TxContext {
  xid: number;
  commitLsn: Lsn;
  commitTime: string;
}

export interface MappedChange {
  change: RowChange | TruncateChange;
  /** Partition root `schema.table`: role lookup and routing use it. */
  root: string;
  /** Completed new row (TOAST filled in) and the columns still unknown. */
  row: Row | null;
  unchangedToast: string[];
  pk: string[];
}

type Role = 'task' | 'etl_context' | 'event_store' | 'row';

const OP: Record<RowChange['kind'] | 'truncate', Op> = {
  insert: 'c',
  update: 'u',
  delete: 'd',
  truncate: 't',
};

/**
 * Row change → CloudEvent (DESIGN §4). Pure apart from a bounded cache of last-known statuses, used to
 * tell `status_changed` from `updated` when the table lacks REPLICA IDENTITY FULL (old row unknown).
 */
export class Mapper {
  private readonly source: string;
  private readonly roleByTable = new Map<string, { role: Role; def: RoleDef }>();
  private readonly statusCache = new Map<string, unknown>();
  private readonly statusCacheSize: number;

  constructor(options: { database: string; slot: string; roles: ResolvedRoles; statusCacheSize?: number }) {
    this.source = `/tag-connector/${options.database}/${options.slot}`;
    const { task, etlContext, eventStore } = options.roles;
    if (task) this.roleByTable.set(task.table, { role: 'task', def: task });
    if (etlContext) this.roleByTable.set(etlContext.table, { role: 'etl_context', def: etlContext });
    if (eventStore) this.roleByTable.set(eventStore.table, { role: 'event_store', def: eventStore });
    this.statusCacheSize = options.statusCacheSize ?? 100_000;
  }

  map(m: MappedChange, tx: TxContext, seq: number): CloudEvent {
    const { change, root } = m;
    const commitlsn = formatLsn(tx.commitLsn);
    const base = {
      specversion: '1.0' as const,
      id: `${commitlsn}/${seq}`,
      source: this.source,
      time: tx.commitTime,
      datacontenttype: 'application/json' as const,
      lsn: formatLsn(change.lsn),
      commitlsn,
      xid: tx.xid,
    };
    if (change.kind === 'truncate') {
      const data: ChangeData = {
        op: 't',
        schema: change.schema,
        table: change.table,
        before: null,
        after: null,
      };
      return { ...base, type: 'row.truncate', subject: root, partitionkey: root, data };
    }
    const before = change.old;
    const after = change.kind === 'delete' ? null : m.row;
    const data: ChangeData = {
      op: OP[change.kind],
      schema: change.schema,
      table: change.table,
      before,
      after,
    };
    if (change.kind === 'update' && before && after) {
      const changed = changedColumns(before, after, m.unchangedToast);
      if (changed) data.changed = changed;
    }
    if (m.unchangedToast.length > 0) data.unchanged_toast = m.unchangedToast;

    const role = this.roleByTable.get(root);
    const keyRow = after ?? before ?? {};
    if (!role) {
      const key = keyOf(keyRow, m.pk) ?? root;
      const type =
        change.kind === 'insert' ? 'row.insert' : change.kind === 'update' ? 'row.update' : 'row.delete';
      return { ...base, type, subject: `${root}/${key}`, partitionkey: key, data };
    }
    const { def } = role;
    const id = stringKey(keyRow[def.idColumn]) ?? keyOf(keyRow, m.pk) ?? root;
    if (role.role === 'event_store') {
      const ctx = stringKey(keyRow[def.contextColumn ?? 'etl_context_id']) ?? id;
      if (change.kind === 'insert' && after) {
        return {
          ...base,
          type: 'etl_context.event',
          subject: `etl_contexts/${ctx}/events/${id}`,
          partitionkey: ctx,
          data: {
            ...data,
            event_id: after[def.idColumn],
            etl_context_id: after[def.contextColumn ?? 'etl_context_id'],
            event: { type: after.type, payload: after.payload, meta: after.meta, error: after.error },
          },
        };
      }
      const type = change.kind === 'update' ? 'row.update' : 'row.delete';
      return { ...base, type, subject: `etl_contexts/${ctx}/events/${id}`, partitionkey: ctx, data };
    }
    const prefix = role.role === 'task' ? 'task' : 'etl_context';
    const subject = `${role.role === 'task' ? 'tasks' : 'etl_contexts'}/${id}`;
    const cacheKey = `${root}:${id}`;
    const status = def.statusColumn;
    let type: string;
    if (change.kind === 'insert') {
      type = `${prefix}.created`;
      if (status && after) this.remember(cacheKey, after[status]);
    } else if (change.kind === 'delete') {
      type = `${prefix}.deleted`;
      this.statusCache.delete(cacheKey);
    } else {
      type = `${prefix}.updated`;
      if (status && after && status in after) {
        const known = before && status in before;
        const from = known ? before[status] : this.statusCache.get(cacheKey);
        const to = after[status];
        if ((known || this.statusCache.has(cacheKey)) && !sameValue(from, to)) {
          type = `${prefix}.status_changed`;
          data.from = from;
          data.to = to;
        }
        this.remember(cacheKey, to);
      }
    }
    return { ...base, type, subject, partitionkey: id, data };
  }

  private remember(key: string, status: unknown): void {
    this.statusCache.delete(key);
    this.statusCache.set(key, status);
    if (this.statusCache.size > this.statusCacheSize) {
      const oldest = this.statusCache.keys().next().value;
      if (oldest !== undefined) this.statusCache.delete(oldest);
    }
  }
}

function stringKey(v: unknown): string | undefined {
  if (v === null || v === undefined) return undefined;
  return typeof v === 'string' ? v : JSON.stringify(v);
}

function keyOf(row: Row, pk: string[]): string | undefined {
  if (pk.length === 0) return undefined;
  const parts = pk.map((c) => stringKey(row[c]));
  if (parts.some((p) => p === undefined)) return undefined;
  return parts.join(',');
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a === 'object' || typeof b === 'object') return JSON.stringify(a) === JSON.stringify(b);
  return false;
}

/** Columns that differ, when the old row is complete enough to tell (REPLICA IDENTITY FULL). */
function changedColumns(before: Row, after: Row, unknown: string[]): string[] | undefined {
  const out: string[] = [];
  for (const k of Object.keys(after)) {
    if (!(k in before)) return undefined; // old row is only the identity: can't tell
    if (!sameValue(before[k], after[k])) out.push(k);
  }
  for (const k of unknown) if (!(k in before)) return undefined;
  return out;
}
