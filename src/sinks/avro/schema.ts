import type { CloudEvent } from '../../events/envelope.ts';
import { baseType } from '../../extractor/decode/index.ts';

/**
 * The Avro form of a table's events (docs/governance.md "Avro"): a record with the CloudEvents
 * attributes and `data` as the JSON events carry them, `before`/`after` typed per column from the
 * catalog. Pure: the schema and the converter that turns an event object into the record that schema
 * writes. Values are converted from the forms events carry (extractor/values.ts): int8 strings to
 * longs, base64 to bytes, "NaN"/"Infinity" to doubles, JSON values to their JSON text.
 */

/** A column of the governed view: excluded columns left out, masked ones with their mask. */
export interface AvroColumn {
  name: string;
  /** format_type() of the column */
  type: string;
  notNull: boolean;
  /** The mask rule (hmac-sha256, redact, truncate(n)): the value is then a string. */
  mask?: string;
}

export type AvroSchema = string | Record<string, unknown> | AvroSchema[];

/** A value the schema cannot write, or a column the schema does not have: names the column, never a value. */
export class AvroShapeError extends Error {
  readonly table: string;
  constructor(table: string, message: string) {
    super(`${table}: ${message}`);
    this.name = 'AvroShapeError';
    this.table = table;
  }
}

/** Why a value does not convert (the caller adds table and column). */
class Misfit extends Error {}

type Convert = (v: unknown) => unknown;

interface ValueType {
  schema: AvroSchema;
  convert: Convert;
}

const LONG_TEXT = /^-?\d{1,19}$/;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function toLong(v: unknown): bigint {
  let n: bigint;
  if (typeof v === 'number' && Number.isSafeInteger(v)) n = BigInt(v);
  else if (typeof v === 'string' && LONG_TEXT.test(v)) n = BigInt(v);
  else if (typeof v === 'bigint') n = v;
  else throw new Misfit('not a 64-bit integer');
  if (n < INT64_MIN || n > INT64_MAX) throw new Misfit('out of the 64-bit range');
  return n;
}

function toInt(v: unknown): number {
  if (typeof v === 'number' && Number.isInteger(v) && v >= -(2 ** 31) && v < 2 ** 31) return v;
  throw new Misfit('not a 32-bit integer');
}

function toDouble(v: unknown): number {
  if (typeof v === 'number') return v;
  // events keep Postgres' spelling of the values JSON has no number for; Avro's double has them
  if (v === 'NaN') return NaN;
  if (v === 'Infinity') return Infinity;
  if (v === '-Infinity') return -Infinity;
  throw new Misfit('not a number');
}

function toBool(v: unknown): boolean {
  if (typeof v === 'boolean') return v;
  throw new Misfit('not a boolean');
}

function toText(v: unknown): string {
  if (typeof v === 'string') return v;
  throw new Misfit('not a string');
}

function toBytes(v: unknown): Buffer {
  if (typeof v === 'string') return Buffer.from(v, 'base64');
  throw new Misfit('not base64 text');
}

/** json/jsonb: the value's JSON text (Avro has no "any JSON" type; Debezium does the same). */
const toJsonText: Convert = (v) => JSON.stringify(v);

/** The Avro type (not nullable) of a column's values, and how an event's value becomes one. */
export function avroValueType(typeName: string): ValueType {
  const base = baseType(typeName);
  if (base.endsWith('[]')) {
    const item = avroValueType(base.slice(0, -2));
    return {
      // Postgres arrays may hold nulls; one dimension only (a nested one is refused, naming the column)
      schema: { type: 'array', items: ['null', item.schema] },
      convert: (v) => {
        if (!Array.isArray(v)) throw new Misfit('not a one-dimensional array');
        return v.map((x: unknown) => {
          if (Array.isArray(x)) throw new Misfit('a multi-dimensional array');
          return x === null ? null : item.convert(x);
        });
      },
    };
  }
  switch (base) {
    case 'smallint':
    case 'integer':
    case 'int2':
    case 'int4':
      return { schema: 'int', convert: toInt };
    case 'oid':
    case 'xid':
    case 'bigint':
    case 'int8':
      return { schema: 'long', convert: toLong };
    case 'real':
    case 'double precision':
    case 'float4':
    case 'float8':
      return { schema: 'double', convert: toDouble };
    case 'boolean':
    case 'bool':
      return { schema: 'boolean', convert: toBool };
    case 'json':
    case 'jsonb':
      return { schema: { type: 'string', 'tag_connector.json': true }, convert: toJsonText };
    case 'bytea':
      return { schema: 'bytes', convert: toBytes };
    case 'uuid':
      return { schema: { type: 'string', logicalType: 'uuid' }, convert: toText };
    default:
      // numeric (its precision is the column's, unbounded by default: Avro's decimal needs a fixed
      // scale), timestamps and dates (ISO text, infinity kept), text, enums, intervals...: as events carry them
      return { schema: 'string', convert: toText };
  }
}

/** A masked column's values are strings whatever the column's type. */
function maskedType(): ValueType {
  return { schema: 'string', convert: toText };
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * An Avro name for a Postgres identifier ([A-Za-z_][A-Za-z0-9_]*): other characters become `_`, a
 * leading digit gets a `_` before it. Not injective ("a-b" and "a_b"): avroFieldNames resolves clashes.
 */
export function avroName(identifier: string): string {
  if (NAME.test(identifier)) return identifier;
  const s = identifier.replace(/[^A-Za-z0-9_]/g, '_');
  return /^[0-9]/.test(s) || s === '' ? `_${s}` : s;
}

/** Field names for columns in order, distinct: a clash gets `_2`, `_3`... */
export function avroFieldNames(columns: readonly string[]): string[] {
  const taken = new Set<string>();
  return columns.map((c) => {
    const name = avroName(c);
    let n = name;
    for (let i = 2; taken.has(n); i++) n = `${name}_${i}`;
    taken.add(n);
    return n;
  });
}

interface RowField {
  column: string;
  field: string;
  convert: Convert;
}

/** A table's Avro event schema and the converter of its events to records of it. */
export interface AvroTableSchema {
  table: string;
  /** The schema as JSON (what the registry gets). */
  schema: Record<string, unknown>;
  /** The event object (structured JSON parsed) as the record the schema writes; throws AvroShapeError. */
  toRecord(event: CloudEvent): Record<string, unknown>;
}

const OPTIONAL_STRING = { type: ['null', 'string'], default: null } as const;

/** The record of a table's events under its governed columns (docs/governance.md "Avro"). */
export function avroTableSchema(table: string, columns: readonly AvroColumn[]): AvroTableSchema {
  const dot = table.indexOf('.');
  const namespace = ['tag_connector', avroName(table.slice(0, dot)), avroName(table.slice(dot + 1))].join(
    '.',
  );
  const names = avroFieldNames(columns.map((c) => c.name));
  const rowFields: RowField[] = [];
  const avroFields: Record<string, unknown>[] = [];
  columns.forEach((c, i) => {
    const t = c.mask ? maskedType() : avroValueType(c.type);
    rowFields.push({ column: c.name, field: names[i]!, convert: t.convert });
    // Always nullable, NOT NULL columns too: an identity-only old row and an unchanged TOAST value
    // leave columns out of a row, and they are written as null (the event's `unchanged_toast` says which).
    avroFields.push({
      name: names[i],
      type: ['null', t.schema],
      default: null,
      'tag_connector.column': c.name,
      'tag_connector.pg_type': c.type,
      'tag_connector.not_null': c.notNull,
      ...(c.mask ? { 'tag_connector.mask': c.mask } : {}),
    });
  });
  const byColumn = new Map(rowFields.map((f) => [f.column, f]));
  const row = { type: 'record', name: 'Row', fields: avroFields };
  const schema: Record<string, unknown> = {
    type: 'record',
    name: 'Event',
    namespace,
    doc: `tag-connector events of ${table} (CloudEvents attributes and data)`,
    fields: [
      { name: 'specversion', type: 'string' },
      { name: 'id', type: 'string' },
      { name: 'source', type: 'string' },
      { name: 'type', type: 'string' },
      { name: 'subject', ...OPTIONAL_STRING },
      { name: 'time', type: 'string' },
      { name: 'lsn', type: 'string' },
      { name: 'commitlsn', type: 'string' },
      { name: 'xid', type: 'long' },
      { name: 'partitionkey', type: 'string' },
      {
        name: 'data',
        type: {
          type: 'record',
          name: 'Data',
          fields: [
            { name: 'op', type: 'string' },
            { name: 'schema', type: 'string' },
            { name: 'table', type: 'string' },
            { name: 'before', type: ['null', row], default: null },
            { name: 'after', type: ['null', 'Row'], default: null },
            { name: 'changed', type: ['null', { type: 'array', items: 'string' }], default: null },
            { name: 'unchanged_toast', type: ['null', { type: 'array', items: 'string' }], default: null },
            // role events (task.status_changed, etl_context.event): their extra members as JSON text
            { name: 'from', ...OPTIONAL_STRING },
            { name: 'to', ...OPTIONAL_STRING },
            { name: 'event_id', ...OPTIONAL_STRING },
            { name: 'etl_context_id', ...OPTIONAL_STRING },
            { name: 'event', ...OPTIONAL_STRING },
            // schema.changed: the columns before and after, as JSON text
            { name: 'columns', ...OPTIONAL_STRING },
          ],
        },
      },
    ],
  };

  const rowRecord = (r: Record<string, unknown> | null | undefined, which: string) => {
    if (r === null || r === undefined) return null;
    const out: Record<string, unknown> = {};
    for (const f of rowFields) out[f.field] = null;
    for (const column in r) {
      const f = byColumn.get(column);
      if (!f)
        throw new AvroShapeError(table, `column ${JSON.stringify(column)} of ${which} is not in the schema`);
      const v = r[column];
      if (v === null || v === undefined) continue;
      try {
        out[f.field] = f.convert(v);
      } catch (err) {
        if (!(err instanceof Misfit)) throw err;
        throw new AvroShapeError(table, `column ${JSON.stringify(column)} of ${which}: ${err.message}`);
      }
    }
    return out;
  };
  const jsonText = (v: unknown) => (v === undefined ? null : JSON.stringify(v));

  return {
    table,
    schema,
    toRecord(event) {
      const d = event.data as Record<string, unknown>;
      for (const k in d)
        if (!DATA_MEMBERS.has(k))
          throw new AvroShapeError(table, `data member ${JSON.stringify(k)} is not in the schema`);
      return {
        specversion: event.specversion,
        id: event.id,
        source: event.source,
        type: event.type,
        subject: event.subject ?? null,
        time: event.time,
        lsn: event.lsn,
        commitlsn: event.commitlsn,
        xid: BigInt(event.xid),
        partitionkey: event.partitionkey,
        data: {
          op: d.op,
          schema: d.schema,
          table: d.table,
          before: rowRecord(d.before as Record<string, unknown> | null, 'before'),
          after: rowRecord(d.after as Record<string, unknown> | null, 'after'),
          changed: d.changed ?? null,
          unchanged_toast: d.unchanged_toast ?? null,
          from: jsonText(d.from),
          to: jsonText(d.to),
          event_id: jsonText(d.event_id),
          etl_context_id: jsonText(d.etl_context_id),
          event: jsonText(d.event),
          columns: jsonText(d.columns),
        },
      };
    },
  };
}

const DATA_MEMBERS = new Set([
  'op',
  'schema',
  'table',
  'before',
  'after',
  'changed',
  'unchanged_toast',
  'from',
  'to',
  'event_id',
  'etl_context_id',
  'event',
  'columns',
]);
