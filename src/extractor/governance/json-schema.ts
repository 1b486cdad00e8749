import { baseType } from '../decode/index.ts';
import type { TableGovernor } from './table.ts';

/** A column as the catalog gives it. */
export interface SchemaColumn {
  name: string;
  /** format_type() */
  type: string;
  notNull: boolean;
}

type JsonSchema = Record<string, unknown>;

/** The JSON Schema of a value of this type as events carry it (extractor/decode/values.ts typing). */
export function valueSchema(typeName: string): JsonSchema {
  const base = baseType(typeName);
  if (base.endsWith('[]')) return { type: 'array', items: valueSchema(base.slice(0, -2)) };
  switch (base) {
    case 'smallint':
    case 'integer':
    case 'int2':
    case 'int4':
    case 'oid':
    case 'xid':
      return { type: 'integer' };
    case 'real':
    case 'double precision':
    case 'float4':
    case 'float8':
      // NaN and ±Infinity keep Postgres' spelling
      return { type: ['number', 'string'] };
    case 'boolean':
    case 'bool':
      return { type: 'boolean' };
    case 'json':
    case 'jsonb':
      return {};
    case 'bytea':
      return { type: 'string', contentEncoding: 'base64' };
    case 'timestamp with time zone':
    case 'timestamptz':
      return { type: 'string', format: 'date-time' };
    case 'bigint':
    case 'int8':
    case 'numeric':
      return { type: 'string', pattern: '^-?[0-9]' };
    default:
      return { type: 'string' };
  }
}

/** A `schema.changed` event's column list. */
const COLUMN_LIST: JsonSchema = {
  type: 'array',
  items: {
    type: 'object',
    required: ['name', 'type'],
    properties: { name: { type: 'string' }, type: { type: 'string' }, mask: { type: 'string' } },
  },
};

function nullable(s: JsonSchema): JsonSchema {
  if (Object.keys(s).length === 0) return s; // any JSON, null included
  const t = s.type;
  return { ...s, type: Array.isArray(t) ? [...t, 'null'] : [t, 'null'] };
}

/**
 * The JSON Schema of a table's row as its events carry it under the rules: excluded columns absent,
 * masked ones strings (hmac-sha256: 64 hex digits; redact: "[redacted]"; truncate: text).
 */
export function rowSchema(columns: readonly SchemaColumn[], governor?: TableGovernor): JsonSchema {
  const properties: Record<string, JsonSchema> = {};
  for (const c of columns) {
    if (governor && !governor.showsColumn(c.name)) continue;
    const mask = governor?.maskOf(c.name);
    let s: JsonSchema = valueSchema(c.type);
    if (mask === 'hmac-sha256') s = { type: 'string', pattern: '^[0-9a-f]{64}$' };
    else if (mask === 'redact') s = { const: '[redacted]' };
    else if (mask) s = { type: 'string', maxLength: Number(/\d+/.exec(mask)![0]) };
    properties[c.name] = c.notNull ? s : mask === 'redact' ? { enum: ['[redacted]', null] } : nullable(s);
  }
  // Columns may be missing from a row (unchanged TOAST, the identity-only old row of a delete).
  return { type: 'object', properties, additionalProperties: false };
}

/** The JSON Schema (2020-12) of a table's events (CloudEvents structured mode, docs/design.md §4). */
export function eventSchema(
  table: string,
  columns: readonly SchemaColumn[],
  governor?: TableGovernor,
): JsonSchema {
  const row = rowSchema(columns, governor);
  const dot = table.indexOf('.');
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: `urn:tag-connector:schema:${table}`,
    title: `events of ${table}`,
    type: 'object',
    required: [
      'specversion',
      'id',
      'source',
      'type',
      'time',
      'lsn',
      'commitlsn',
      'xid',
      'partitionkey',
      'data',
    ],
    properties: {
      specversion: { const: '1.0' },
      id: { type: 'string' },
      source: { type: 'string' },
      type: { type: 'string' },
      subject: { type: 'string' },
      time: { type: 'string' },
      datacontenttype: { const: 'application/json' },
      lsn: { type: 'string' },
      commitlsn: { type: 'string' },
      xid: { type: 'integer' },
      partitionkey: { type: 'string' },
      data: {
        type: 'object',
        required: ['op', 'schema', 'table', 'before', 'after'],
        properties: {
          op: { enum: ['c', 'u', 'd', 'r', 't', 's'] },
          schema: { const: table.slice(0, dot) },
          table: { const: table.slice(dot + 1) },
          before: { anyOf: [{ type: 'null' }, row] },
          after: { anyOf: [{ type: 'null' }, row] },
          changed: { type: 'array', items: { type: 'string' } },
          unchanged_toast: { type: 'array', items: { type: 'string' } },
          // schema.changed: the governed columns before and after (docs/governance.md "Schema changes")
          columns: {
            type: 'object',
            required: ['before', 'after'],
            properties: { before: COLUMN_LIST, after: COLUMN_LIST },
          },
        },
      },
    },
  };
}
