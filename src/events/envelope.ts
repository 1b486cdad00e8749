/**
 * The event envelope: CloudEvents 1.0, structured JSON by default (docs/design.md §4). The id is
 * `<commitLsn>/<seq>`, so a change Postgres redelivers after a crash gets the same id.
 */
/** s: `schema.changed` (a table's columns changed: docs/governance.md "Schema changes"). */
export type Op = 'c' | 'u' | 'd' | 't' | 'r' | 's';

export interface ChangeData {
  op: Op;
  schema: string;
  table: string;
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
  /** Columns whose value changed (updates, when the old row is known). */
  changed?: string[];
  /** Columns whose value is an unchanged TOAST value Postgres did not send (and we could not fill). */
  unchanged_toast?: string[];
  /** task.status_changed / etl_context.status_changed */
  from?: unknown;
  to?: unknown;
  [extra: string]: unknown;
}

export interface CloudEvent<D = ChangeData | Record<string, unknown>> {
  specversion: '1.0';
  id: string;
  source: string;
  type: string;
  subject?: string;
  time: string;
  datacontenttype: 'application/json';
  lsn: string;
  commitlsn: string;
  xid: number;
  partitionkey: string;
  data: D;
}

export const EVENT_TYPES = [
  'task.created',
  'task.status_changed',
  'task.updated',
  'task.deleted',
  'etl_context.created',
  'etl_context.status_changed',
  'etl_context.updated',
  'etl_context.deleted',
  'etl_context.event',
  'row.insert',
  'row.update',
  'row.delete',
  'row.truncate',
  'schema.changed',
] as const;

/** CloudEvents binary mode: the context attributes as `ce_`-prefixed headers / attributes, data as body. */
export function binaryAttributes(event: CloudEvent): Record<string, string> {
  const attrs: Record<string, string> = {
    ce_specversion: event.specversion,
    ce_id: event.id,
    ce_source: event.source,
    ce_type: event.type,
    ce_time: event.time,
    ce_lsn: event.lsn,
    ce_commitlsn: event.commitlsn,
    ce_xid: String(event.xid),
    ce_partitionkey: event.partitionkey,
    'content-type': event.datacontenttype,
  };
  if (event.subject) attrs.ce_subject = event.subject;
  return attrs;
}

/** Rebuilds an event from binary mode (attributes + data). */
export function fromBinary(attrs: Record<string, string | undefined>, data: unknown): CloudEvent {
  const need = (k: string): string => {
    const v = attrs[k];
    if (v === undefined) throw new Error(`binary CloudEvent without ${k}`);
    return v;
  };
  return {
    specversion: '1.0',
    id: need('ce_id'),
    source: need('ce_source'),
    type: need('ce_type'),
    ...(attrs.ce_subject ? { subject: attrs.ce_subject } : {}),
    time: need('ce_time'),
    datacontenttype: 'application/json',
    lsn: need('ce_lsn'),
    commitlsn: need('ce_commitlsn'),
    xid: Number(need('ce_xid')),
    partitionkey: need('ce_partitionkey'),
    data: data as ChangeData,
  };
}
