import { formatLsn, type Lsn } from '../../util/lsn.ts';
import {
  type ReadChange,
  type Row,
  type RowChange,
  type TruncateChange,
  hasColumn,
  jsonKey,
  jsonString,
  keyOf,
  rowJson,
  valueText,
} from '../decode/index.ts';
import { GovernanceError, type Governance } from '../governance/index.ts';
import type { ShapeChange } from '../shapes/index.ts';
import type { RoleDef, ResolvedRoles } from './roles.ts';
import { schemaChangedData } from './schema-event.ts';

/** The transaction a change belongs to. */
export interface TxContext {
  xid: number;
  commitLsn: Lsn;
  commitTime: string;
}

export interface MappedChange {
  change: RowChange | ReadChange | TruncateChange;
  /** Partition root `schema.table`: role lookup and routing use it. */
  root: string;
  /** Completed new row (TOAST filled in) and the columns still unknown. */
  row: Row | null;
  unchangedToast: string[];
  pk: string[];
  /** The old row is the whole row (REPLICA IDENTITY FULL), not only the identity: filters can judge it. */
  oldFull?: boolean;
  /** Apply every rule but the filter (the event of a dead letter). */
  unfiltered?: boolean;
}

/** A mapped event: its JSON and the envelope attributes sinks route by. */
export interface MappedEvent {
  id: string;
  type: string;
  partitionkey: string;
  time: string;
  json: string;
}

type Role = 'task' | 'etl_context' | 'event_store' | 'row';

const OP: Record<RowChange['kind'] | ReadChange['kind'], string> = {
  insert: 'c',
  update: 'u',
  delete: 'd',
  read: 'r',
};

/** A backfill's read of a role table: `<role>.read` (docs/backfill.md). */
const READ_TYPES: Record<Role, string> = {
  task: 'task.read',
  etl_context: 'etl_context.read',
  event_store: 'event_store.read',
  row: 'row.read',
};

/**
 * Event types as constants: a type made per event (`${prefix}.created`) would be one more string
 * per event kept alive while the event waits for its sinks (event-block.ts keeps a reference each).
 */
const TYPES = {
  task: {
    created: 'task.created',
    updated: 'task.updated',
    deleted: 'task.deleted',
    status_changed: 'task.status_changed',
  },
  etl_context: {
    created: 'etl_context.created',
    updated: 'etl_context.updated',
    deleted: 'etl_context.deleted',
    status_changed: 'etl_context.status_changed',
  },
} as const;

/** Per transaction, the envelope text every event of it shares (formatted once, not per event). */
interface TxText {
  tx: TxContext;
  commitlsn: string;
  /** `"time":...,"datacontenttype":...` */
  middle: string;
  /** `,"commitlsn":...,"xid":...,"type":"` follows the event's lsn. */
  xid: string;
}

/**
 * Row change → CloudEvent JSON (docs/design.md §4), written as text: the row values are already JSON text
 * (changes.ts `Row`), so the event is spliced together, never built as an object and stringified.
 * Key order and content are those of the envelope type (events/envelope.ts). Pure apart from a
 * bounded cache of last-known statuses, used to tell `status_changed` from `updated` when the table
 * lacks REPLICA IDENTITY FULL (old row unknown).
 */
export class Mapper {
  private readonly sourceJson: string;
  private readonly roleByTable = new Map<string, { role: Role; def: RoleDef }>();
  private readonly statusCache = new Map<string, string>();
  private readonly statusCacheSize: number;
  private txText?: TxText;
  private governance?: Governance;

  constructor(options: {
    database: string;
    slot: string;
    roles: ResolvedRoles;
    statusCacheSize?: number;
    /** Per-table rules (docs/governance.md), applied here once so every consumer sees the same view. */
    governance?: Governance;
  }) {
    this.governance = options.governance;
    this.sourceJson = JSON.stringify(`/tag-connector/${options.database}/${options.slot}`);
    const { task, etlContext, eventStore } = options.roles;
    if (task) this.roleByTable.set(task.table, { role: 'task', def: task });
    if (etlContext) this.roleByTable.set(etlContext.table, { role: 'etl_context', def: etlContext });
    if (eventStore) this.roleByTable.set(eventStore.table, { role: 'event_store', def: eventStore });
    this.statusCacheSize = options.statusCacheSize ?? 100_000;
  }

  private forTx(tx: TxContext): TxText {
    let t = this.txText;
    if (t?.tx !== tx) {
      const commitlsn = formatLsn(tx.commitLsn);
      t = {
        tx,
        commitlsn,
        middle: `,"source":${this.sourceJson},"time":${JSON.stringify(tx.commitTime)},"datacontenttype":"application/json","lsn":"`,
        xid: `","commitlsn":"${commitlsn}","xid":${tx.xid},"type":"`,
      };
      this.txText = t;
    }
    return t;
  }

  private lastSchema = '';
  private lastTable = '';
  private lastNames = '';

  /** `"schema":..,"table":..` of a table (changes come in runs of one table: the last one is kept). */
  private tableNames(schema: string, table: string): string {
    if (schema !== this.lastSchema || table !== this.lastTable) {
      this.lastSchema = schema;
      this.lastTable = table;
      this.lastNames = `"schema":${JSON.stringify(schema)},"table":${JSON.stringify(table)}`;
    }
    return this.lastNames;
  }

  private nextGovernance?: { g: Governance | undefined };

  /**
   * New rules (a reload): they apply from the next transaction on, so that no transaction's events
   * are mapped under two sets of rules.
   */
  setGovernance(governance: Governance | undefined): void {
    this.nextGovernance = { g: governance };
    if (!this.txText) this.applyNextGovernance();
  }

  private applyNextGovernance(): void {
    if (!this.nextGovernance) return;
    this.governance = this.nextGovernance.g;
    this.nextGovernance = undefined;
  }

  /**
   * The event of a change, or null when a table's filter drops it. Throws GovernanceError (without
   * row values) when a rule cannot be applied: the caller sends the change to the dead letters.
   */
  map(m: MappedChange, tx: TxContext, seq: number): MappedEvent | null {
    if (this.nextGovernance && this.txText?.tx !== tx) this.applyNextGovernance();
    let { change } = m;
    const { root } = m;
    const rules = change.kind === 'truncate' ? undefined : this.governance?.for(root);
    let before = change.kind === 'truncate' ? null : change.old;
    let afterRow = m.row;
    let unchangedToast = m.unchangedToast;
    if (rules && change.kind !== 'truncate') {
      let g;
      try {
        g = rules.apply(
          change.kind,
          change.old,
          m.row,
          m.oldFull ?? false,
          m.pk,
          m.unchangedToast,
          !m.unfiltered,
        );
      } catch (err) {
        // The dead letter carries the event as the rules but the filter shape it (no hidden value).
        if (err instanceof GovernanceError && !m.unfiltered)
          err.event = this.map({ ...m, unfiltered: true }, tx, seq) ?? undefined;
        throw err;
      }
      if (!g) return null;
      if (g.kind !== change.kind) change = { ...change, kind: g.kind as RowChange['kind'] };
      before = g.before;
      afterRow = g.after;
      unchangedToast = g.unchangedToast;
    }
    const t = this.forTx(tx);
    const id = `${t.commitlsn}/${seq}`;
    const head = `{"specversion":"1.0","id":"${id}"${t.middle}${change.lsn}${t.xid}`;
    const names = this.tableNames(change.schema, change.table);
    const event = (type: string, subject: string, partitionkey: string, data: string): MappedEvent => ({
      id,
      type,
      partitionkey,
      time: tx.commitTime,
      json: `${head}${type}","subject":${jsonString(subject)},"partitionkey":${jsonString(partitionkey)},"data":{${data}}}`,
    });
    if (change.kind === 'truncate')
      return event('row.truncate', root, root, `"op":"t",${names},"before":null,"after":null`);

    const after = change.kind === 'delete' ? null : afterRow;
    let data = `"op":"${OP[change.kind]}",${names},"before":${before ? rowJson(before) : 'null'},"after":${after ? rowJson(after) : 'null'}`;
    if (change.kind === 'update' && before && after) {
      const changed = changedColumns(before, after, unchangedToast);
      if (changed) data += `,"changed":${changed}`;
    }
    if (unchangedToast.length > 0) data += `,"unchanged_toast":${JSON.stringify(unchangedToast)}`;

    const role = this.roleByTable.get(root);
    const keyRow = after ?? before ?? EMPTY_ROW;
    // A rule's key columns make the partition key; the subject stays the row's identity.
    const ruleKey = rules?.key ? (keyOfColumns(keyRow, rules.key) ?? root) : undefined;
    if (!role) {
      const key = keyOfColumns(keyRow, m.pk) ?? root;
      const type =
        change.kind === 'insert'
          ? 'row.insert'
          : change.kind === 'update'
            ? 'row.update'
            : change.kind === 'read'
              ? 'row.read'
              : 'row.delete';
      return event(type, `${root}/${key}`, ruleKey ?? key, data);
    }
    const { def } = role;
    const id2 = keyOf(keyRow, def.idColumn) ?? keyOfColumns(keyRow, m.pk) ?? root;
    if (role.role === 'event_store') {
      const contextColumn = def.contextColumn ?? 'etl_context_id';
      const ctx = keyOf(keyRow, contextColumn) ?? id2;
      const subject = `etl_contexts/${ctx}/events/${id2}`;
      if ((change.kind === 'insert' || change.kind === 'read') && after) {
        data +=
          members({
            event_id: valueText(after, def.idColumn),
            etl_context_id: valueText(after, contextColumn),
          }) +
          `,"event":{${members({
            type: valueText(after, 'type'),
            payload: valueText(after, 'payload'),
            meta: valueText(after, 'meta'),
            error: valueText(after, 'error'),
          }).slice(1)}}`;
        return event(
          change.kind === 'read' ? READ_TYPES.event_store : 'etl_context.event',
          subject,
          ruleKey ?? ctx,
          data,
        );
      }
      return event(change.kind === 'update' ? 'row.update' : 'row.delete', subject, ruleKey ?? ctx, data);
    }
    const types = role.role === 'task' ? TYPES.task : TYPES.etl_context;
    const subject = `${role.role === 'task' ? 'tasks' : 'etl_contexts'}/${id2}`;
    const cacheKey = `${root}:${id2}`;
    const status = def.statusColumn;
    let type: string;
    if (change.kind === 'insert' || change.kind === 'read') {
      type = change.kind === 'read' ? READ_TYPES[role.role] : types.created;
      const s = status ? valueText(after, status) : undefined;
      if (s !== undefined) this.remember(cacheKey, s);
    } else if (change.kind === 'delete') {
      type = types.deleted;
      this.statusCache.delete(cacheKey);
    } else {
      type = types.updated;
      const to = status ? valueText(after, status) : undefined;
      if (to !== undefined) {
        const known = valueText(before, status!);
        const from = known ?? this.statusCache.get(cacheKey);
        if (from !== undefined && from !== to) {
          type = types.status_changed;
          data += `,"from":${from},"to":${to}`;
        }
        this.remember(cacheKey, to);
      }
    }
    return event(type, subject, ruleKey ?? id2, data);
  }

  /**
   * The `schema.changed` event of a table whose columns changed (docs/governance.md "Schema changes"),
   * at `seq`, just before the change that first showed the new columns (`lsn`); null when the governed
   * view did not change (only excluded columns did).
   */
  mapSchemaChange(
    c: { root: string; schema: string; table: string; lsn: string; change: ShapeChange },
    tx: TxContext,
    seq: number,
  ): MappedEvent | null {
    if (this.nextGovernance && this.txText?.tx !== tx) this.applyNextGovernance();
    const data = schemaChangedData(c.change.before, c.change.after, this.governance?.for(c.root));
    if (data === null) return null;
    const t = this.forTx(tx);
    const id = `${t.commitlsn}/${seq}`;
    const type = 'schema.changed';
    const root = jsonString(c.root);
    return {
      id,
      type,
      partitionkey: c.root,
      time: tx.commitTime,
      json: `{"specversion":"1.0","id":"${id}"${t.middle}${c.lsn}${t.xid}${type}","subject":${root},"partitionkey":${root},"data":{"op":"s",${this.tableNames(c.schema, c.table)},${data}}}`,
    };
  }

  private remember(key: string, status: string): void {
    this.statusCache.delete(key);
    this.statusCache.set(key, status);
    if (this.statusCache.size > this.statusCacheSize) {
      const oldest = this.statusCache.keys().next().value;
      if (oldest !== undefined) this.statusCache.delete(oldest);
    }
  }
}

/** `,"a":<text>,"b":<text>` for the members whose text is known (JSON.stringify drops undefined too). */
function members(values: Record<string, string | undefined>): string {
  let out = '';
  for (const k in values) {
    const v = values[k];
    if (v !== undefined) out += `,${jsonKey(k)}:${v}`;
  }
  return out;
}

/**
 * The key of a row by its key columns: one column's value as keyOf gives it; several as a JSON array
 * text of their values (`["a,b","c"]`), so that ('a,b','c') and ('a','b,c') stay apart.
 */
export function keyOfColumns(row: Row, columns: readonly string[]): string | undefined {
  if (columns.length === 0) return undefined;
  if (columns.length === 1) return keyOf(row, columns[0]!);
  let out = '[';
  for (let i = 0; i < columns.length; i++) {
    const v = valueText(row, columns[i]!);
    if (v === undefined || v === 'null') return undefined;
    out += (i ? ',' : '') + v;
  }
  return out + ']';
}

/**
 * Columns that differ (as a JSON array text), when the old row is complete enough to tell (REPLICA
 * IDENTITY FULL). Values are compared as their JSON text: both rows come from the same decoder, so
 * equal values have equal text.
 */
function changedColumns(before: Row, after: Row, unknown: string[]): string | undefined {
  const bk = before.keys;
  const bv = before.values;
  let out = '';
  for (let i = 0; i < after.keys.length; i++) {
    const k = after.keys[i]!;
    const j = bk[i] === k ? i : bk.indexOf(k);
    if (j < 0) return undefined; // old row is only the identity: can't tell
    if (bv[j] !== after.values[i]) out += out ? ',' + k : k;
  }
  for (const k of unknown) if (!hasColumn(before, k)) return undefined;
  return '[' + out + ']';
}

const EMPTY_ROW: Row = { keys: [], values: [] };
