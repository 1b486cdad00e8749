import type { ChangeData, CloudEvent } from './envelope.ts';

/**
 * A Debezium-compatible change value (`before`, `after`, `op`, `ts_ms`, `source`), so consumers
 * written for Debezium topics read ours unchanged. Debezium's op letters: c, u, d, r, t.
 */
export interface DebeziumValue {
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
  op: string;
  ts_ms: number;
  source: {
    version: string;
    connector: 'postgresql';
    name: string;
    ts_ms: number;
    db: string;
    schema: string;
    table: string;
    txId: number;
    lsn: number;
    sequence: string;
  };
}

export function toDebezium(event: CloudEvent, db: string, version: string): DebeziumValue {
  const d = event.data as ChangeData;
  const ts = Date.parse(event.time);
  const [hi, lo] = event.lsn.split('/').map((h) => parseInt(h, 16)) as [number, number];
  return {
    before: d.before ?? null,
    after: d.after ?? null,
    op: d.op,
    ts_ms: Date.now(),
    source: {
      version,
      connector: 'postgresql',
      name: event.source,
      ts_ms: ts,
      db,
      schema: d.schema,
      table: d.table,
      txId: event.xid,
      lsn: hi * 2 ** 32 + lo,
      sequence: JSON.stringify([event.commitlsn, event.id]),
    },
  };
}
