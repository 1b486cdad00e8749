import type { Row } from './changes.ts';

/**
 * Rows travel as JSON text per column (see changes.ts `Row`): the decoders write each value's JSON
 * once, and the mapper splices those texts into the event without parsing or re-encoding them.
 * These helpers are the few places that need a value back as a JS value.
 */

const KEY_CACHE_LIMIT = 10_000;
const keyJson = new Map<string, string>();

/** `"name"`: the JSON of a column name, cached (the same few names recur on every change). */
export function jsonKey(name: string): string {
  let k = keyJson.get(name);
  if (k === undefined) {
    k = JSON.stringify(name);
    if (keyJson.size < KEY_CACHE_LIMIT) keyJson.set(name, k);
  }
  return k;
}

/** The row as a JSON object text. */
export function rowJson(row: Row): string {
  let out = '{';
  let first = true;
  for (const name in row) {
    if (!first) out += ',';
    first = false;
    out += jsonKey(name) + ':' + row[name];
  }
  return out + '}';
}

/** A column's typed value (undefined when the row lacks the column). */
export function valueOf(row: Row, column: string): unknown {
  const text = row[column];
  return text === undefined ? undefined : JSON.parse(text);
}

/**
 * A column's value as a key string (subject, partition key): a string as itself, anything else as its
 * JSON; undefined for null or a missing column.
 */
export function keyOf(row: Row, column: string): string | undefined {
  const text = row[column];
  if (text === undefined || text === 'null') return undefined;
  if (text.charCodeAt(0) !== 34) return text;
  return text.indexOf('\\') < 0 ? text.slice(1, -1) : (JSON.parse(text) as string);
}

/** The row with typed values (tests, tools; never the hot path). */
export function typedRow(row: Row | null): Record<string, unknown> | null {
  if (!row) return null;
  const out: Record<string, unknown> = {};
  for (const name in row) out[name] = JSON.parse(row[name]!);
  return out;
}

/** A typed row as a Row (producers that have JS values, e.g. pgoutput's converted text columns). */
export function textRow(values: Record<string, unknown>): Row {
  const out: Row = {};
  for (const name in values) out[name] = JSON.stringify(values[name]) ?? 'null';
  return out;
}
