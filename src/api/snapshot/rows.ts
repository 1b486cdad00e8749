import { converterFor } from '../../extractor/decode/index.ts';
import type { CopyField } from './copy-text.ts';

/** A table the Snapshot reads: its columns in COPY order, their types (format_type) and its key. */
export interface SnapshotTable {
  /** schema.table */
  name: string;
  columns: { name: string; type: string }[];
  pk: string[];
}

/** Turns a column's COPY text into its JSON text: JSON.stringify(converterFor(type)(raw)), faster. */
export type JsonEmitter = (raw: string) => string;

const IDENTITY = converterFor('text');
const NUMBER = converterFor('integer');
const BOOL = converterFor('boolean');
const TIMESTAMPTZ = converterFor('timestamp with time zone');
const TIMESTAMP = converterFor('timestamp without time zone');
/** Integer types whose text form is already the JSON number (JSON.stringify(Number(s)) === s). */
const INTEGER_TYPES = new Set(['smallint', 'integer', 'int2', 'int4', 'oid', 'xid']);

export const stringJson: JsonEmitter = (s) => JSON.stringify(s);
export const integerJson: JsonEmitter = (s) => s;
const floatJson: JsonEmitter = (s) => {
  const n = Number(s);
  // NaN and ±Infinity have no JSON number: the change stream keeps Postgres' spelling.
  return Number.isFinite(n) ? String(n) : JSON.stringify(s);
};
const boolJson: JsonEmitter = (s) => (s === 't' || s === 'true' ? 'true' : 'false');

/**
 * The JSON text of a column value of this type, typed exactly as the change stream types it
 * (converterFor), without building the value where that is not needed.
 */
export function jsonEmitterFor(typeName: string): JsonEmitter {
  const convert = converterFor(typeName);
  if (convert === IDENTITY) return stringJson;
  if (convert === BOOL) return boolJson;
  if (convert === NUMBER) return INTEGER_TYPES.has(typeName.trim()) ? integerJson : floatJson;
  return (s) => JSON.stringify(convert(s)) ?? 'null';
}

/**
 * How a column's JSON can be written straight from its COPY bytes (row-encoder.ts); anything else
 * goes through its JsonEmitter.
 */
export const ByteKind = {
  /** Its JsonEmitter, on the decoded text. */
  Emitter: 0,
  /** The text as a JSON string (text, varchar, int8, numeric, uuid, date, enums, ...). */
  String: 1,
  /** The text as it is (int2/int4/oid/xid: already the JSON number). */
  Integer: 2,
  Boolean: 3,
  /** ISO-8601: the space between date and time becomes `T`, a whole-hour offset gets `:00`. */
  TimestampTz: 4,
  Timestamp: 5,
} as const;
export type ByteKind = (typeof ByteKind)[keyof typeof ByteKind];

export function byteKindFor(typeName: string): ByteKind {
  const convert = converterFor(typeName);
  const emit = jsonEmitterFor(typeName);
  if (emit === stringJson) return ByteKind.String;
  if (emit === integerJson) return ByteKind.Integer;
  if (convert === BOOL) return ByteKind.Boolean;
  if (convert === TIMESTAMPTZ) return ByteKind.TimestampTz;
  if (convert === TIMESTAMP) return ByteKind.Timestamp;
  return ByteKind.Emitter;
}

/**
 * How one table's COPY row becomes its NDJSON line, precomputed: the text around the values, each
 * column's `"name":` prefix in the order JSON.stringify gives an object built column by column
 * (integer-like names first), and each column's emitter. This is the reference (string) form; the
 * route writes the same bytes with row-encoder.ts.
 */
export interface RowShape {
  /** Schema and table name as JSON strings. */
  schemaJson: string;
  tableJson: string;
  /** `{"type":"snapshot.row",...,"key":` */
  head: string;
  /** `,"data":{"op":"r",...,"after":` */
  middle: string;
  /** Column indexes (COPY order) in the order of the row object's keys. */
  order: number[];
  /** `{"name":` for the first key, `,"name":` for the others, in `order`. */
  prefixes: string[];
  /** In `order`. */
  emitters: JsonEmitter[];
  /** Key column indexes (COPY order); -1 for a key column the table lacks. */
  pk: number[];
  /** Index of the workspace column, -1 when the table has none. */
  workspace: number;
  /** The row's NDJSON line, newline included. */
  line: (fields: CopyField[]) => string;
  /** The `key` value's JSON: `null` without a primary key. */
  keyText: (fields: CopyField[]) => string;
  inWorkspaces: (fields: CopyField[], workspaces: Set<string>) => boolean;
  /** Whether a value of the workspace column is one of `workspaces`. */
  workspaceIn: (raw: CopyField | undefined, workspaces: Set<string>) => boolean;
}

export function rowShape(t: SnapshotTable, workspaceColumn: string): RowShape {
  const schema = t.name.slice(0, t.name.indexOf('.'));
  const table = t.name.slice(t.name.indexOf('.') + 1);
  // The key order of an object built by assignment, as before (and as the change stream builds it).
  const slots: Record<string, number> = {};
  t.columns.forEach((c, i) => (slots[c.name] = i));
  const order = Object.keys(slots).map((k) => slots[k]!);
  const prefixes = order.map((i, n) => (n === 0 ? '{' : ',') + JSON.stringify(t.columns[i]!.name) + ':');
  const emitters = order.map((i) => jsonEmitterFor(t.columns[i]!.type));
  const converters = t.columns.map((c) => converterFor(c.type));
  const empty = '{}';
  const schemaJson = JSON.stringify(schema);
  const tableJson = JSON.stringify(table);
  const head = `{"type":"snapshot.row","schema":${schemaJson},"table":${tableJson},"key":`;
  const middle = `,"data":{"op":"r","schema":${schemaJson},"table":${tableJson},"before":null,"after":`;
  const pk = t.pk.map((name) => t.columns.findIndex((c) => c.name === name));
  const value = (raw: CopyField | undefined, i: number): unknown =>
    raw === null || raw === undefined ? (i < 0 ? undefined : null) : converters[i]!(raw);
  // The usual key, one text or integer column: its JSON string straight from the COPY text.
  const onlyPk = pk.length === 1 ? pk[0]! : -1;
  const onlyPkEmitter = onlyPk >= 0 ? jsonEmitterFor(t.columns[onlyPk]!.type) : undefined;
  const fastKey = onlyPkEmitter === stringJson || onlyPkEmitter === integerJson;
  const keyText = (fields: CopyField[]): string => {
    if (!pk.length) return 'null';
    if (fastKey) {
      const raw = fields[onlyPk];
      if (raw !== null && raw !== undefined)
        return onlyPkEmitter === stringJson ? JSON.stringify(raw) : '"' + raw + '"';
    }
    if (pk.length === 1) {
      const v = value(onlyPk < 0 ? undefined : fields[onlyPk], onlyPk);
      return JSON.stringify(typeof v === 'string' ? v : String(JSON.stringify(v)));
    }
    // Several key columns: a JSON array text of their values, as the change stream's partition key
    // (extractor/pipeline/mapper.ts keyOfColumns), so ('a,b','c') and ('a','b,c') stay apart.
    const values: unknown[] = [];
    for (const i of pk) values.push(value(i < 0 ? undefined : fields[i], i) ?? null);
    return JSON.stringify(JSON.stringify(values));
  };
  const ws = t.columns.findIndex((c) => c.name === workspaceColumn);
  const workspaceIn = (raw: CopyField | undefined, workspaces: Set<string>): boolean => {
    if (ws < 0) return false;
    const w = value(raw, ws);
    return w !== undefined && w !== null && workspaces.has(String(w));
  };
  return {
    schemaJson,
    tableJson,
    head,
    middle,
    order,
    prefixes,
    emitters,
    pk,
    workspace: ws,
    keyText,
    workspaceIn,
    line: (fields) => {
      let after = empty;
      if (order.length) {
        after = '';
        for (let n = 0; n < order.length; n++) {
          const raw = fields[order[n]!];
          after += prefixes[n]! + (raw === null || raw === undefined ? 'null' : emitters[n]!(raw));
        }
        after += '}';
      }
      return head + keyText(fields) + ',"after":' + after + middle + after + '}}\n';
    },
    inWorkspaces: (fields, workspaces) => workspaceIn(ws < 0 ? undefined : fields[ws], workspaces),
  };
}
