import type { Row } from './changes.ts';

/**
 * Helpers over rows as JSON text (changes.ts `Row`): the decoders write each value's JSON once, the
 * mapper splices those texts into the event, and these are the few places that need a column by name
 * or a value back as a JS value.
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

/** A character JSON.stringify escapes: quote, backslash, control characters, (lone) surrogates. */
// eslint-disable-next-line no-control-regex -- control characters are exactly what JSON escapes
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/**
 * `JSON.stringify(s)` for a string, quoted directly when nothing in it needs escaping (the usual
 * subject or partition key: JSON.stringify costs ~60 ns even then, twice per event). The check is a
 * regular expression (native, 1.5× a charCodeAt loop on short strings); long strings (pgoutput's text
 * values, a TOASTed text of kilobytes) go to JSON.stringify at once, whose own scan is the fastest.
 */
export function jsonString(s: string): string {
  if (s.length > 256 || NEEDS_ESCAPE.test(s)) return JSON.stringify(s);
  return '"' + s + '"';
}

export function emptyRow(): Row {
  return { keys: [], values: [] };
}

/** The row as a JSON object text. */
export function rowJson(row: Row): string {
  const { keys, values } = row;
  if (keys.length === 0) return '{}';
  let out = '{' + keys[0]! + ':' + values[0]!;
  for (let i = 1; i < keys.length; i++) out += ',' + keys[i]! + ':' + values[i]!;
  return out + '}';
}

/** A column's value as JSON text, undefined when the row lacks the column. */
export function valueText(row: Row | null, column: string): string | undefined {
  if (!row) return undefined;
  const i = row.keys.indexOf(jsonKey(column));
  return i < 0 ? undefined : row.values[i];
}

export function hasColumn(row: Row, column: string): boolean {
  return row.keys.indexOf(jsonKey(column)) >= 0;
}

/**
 * A column's value as a key string (subject, partition key): a string as itself, anything else as its
 * JSON; undefined for null or a missing column.
 */
export function keyOf(row: Row, column: string): string | undefined {
  const text = valueText(row, column);
  if (text === undefined || text === 'null') return undefined;
  if (text.charCodeAt(0) !== 34) return text;
  return text.indexOf('\\') < 0 ? text.slice(1, -1) : (JSON.parse(text) as string);
}

/** The row with typed values (tests, tools; never the hot path). */
export function typedRow(row: Row | null): Record<string, unknown> | null {
  if (!row) return null;
  const out: Record<string, unknown> = {};
  for (let i = 0; i < row.keys.length; i++)
    out[JSON.parse(row.keys[i]!) as string] = JSON.parse(row.values[i]!);
  return out;
}

/** A typed row as a Row (tests and producers that hold JS values). */
export function textRow(values: Record<string, unknown>): Row {
  const row = emptyRow();
  for (const name in values) {
    row.keys.push(jsonKey(name));
    row.values.push(JSON.stringify(values[name]) ?? 'null');
  }
  return row;
}
