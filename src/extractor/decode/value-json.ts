import { jsonString } from './row-json.ts';
import { baseType, converterFor, type Converter } from './values.ts';

/**
 * A value's Postgres text form (pgoutput's text columns) → the JSON text of its typed value (values.ts
 * has the type mapping), without making the typed JS value first: the pgoutput counterpart of the
 * wal2json scanner's token splicing. For every type it gives what `JSON.stringify(converterFor(type)(text))`
 * gives (the generic path; test/unit/value-json.test.ts checks that for random values of every type),
 * except jsonb, whose text Postgres prints as one line of valid JSON and which is spliced in as it is
 * (equal as JSON; numbers beyond 2^53 stay exact, where the generic path would round them): what the
 * wal2json decoder does with the same value.
 *
 * The common types cost a scan of the text and one concatenation: text-like values (text, int8,
 * numeric, uuid, dates, ...) are quoted directly when nothing needs escaping, integers pass as they are,
 * timestamps and bytea are quoted after their conversion (neither holds a character JSON escapes),
 * booleans are a lookup. Whatever a fast path does not recognise takes the generic path.
 */
export type TextToJson = (text: string) => string;

const generic =
  (convert: Converter): TextToJson =>
  (s) =>
    JSON.stringify(convert(s)) ?? 'null';

const isDigit = (c: number) => c >= 48 && c <= 57;

/** `-?(0|[1-9][0-9]*)` with at most 15 digits: what Number() and back gives unchanged. */
function isPlainInteger(s: string): boolean {
  const n = s.length;
  let i = s.charCodeAt(0) === 45 ? 1 : 0;
  const digits = n - i;
  if (digits < 1 || digits > 15) return false;
  if (s.charCodeAt(i) === 48) return digits === 1 && i === 0; // "0", not "-0" or "01"
  for (; i < n; i++) if (!isDigit(s.charCodeAt(i))) return false;
  return true;
}

/**
 * A decimal as JavaScript prints the same double: `-?(0|[1-9]\d*)(\.\d*[1-9])?`, at most 15 significant
 * digits (any such decimal survives the round trip through a double unchanged, and none shorter maps to
 * the same double), no exponent, not -0, and not below 1e-6 (where JavaScript switches to exponents).
 */
function isPlainDecimal(s: string): boolean {
  const n = s.length;
  let i = s.charCodeAt(0) === 45 ? 1 : 0;
  const intFrom = i;
  while (i < n && isDigit(s.charCodeAt(i))) i++;
  const intDigits = i - intFrom;
  if (intDigits === 0 || (intDigits > 1 && s.charCodeAt(intFrom) === 48)) return false;
  const zeroInt = intDigits === 1 && s.charCodeAt(intFrom) === 48;
  if (i === n) return intDigits <= 15 && !(zeroInt && intFrom === 1);
  if (s.charCodeAt(i) !== 46) return false;
  const fracFrom = ++i;
  while (i < n && isDigit(s.charCodeAt(i))) i++;
  if (i !== n || i === fracFrom || s.charCodeAt(n - 1) === 48) return false;
  let significant = intDigits + (n - fracFrom);
  if (zeroInt) {
    let z = fracFrom;
    while (s.charCodeAt(z) === 48) z++;
    if (z - fracFrom >= 6) return false;
    significant = n - z;
  }
  return significant <= 15;
}

function textToJson(typeName: string): TextToJson {
  const convert = converterFor(typeName);
  const base = baseType(typeName);
  if (base.endsWith('[]')) return generic(convert);
  switch (base) {
    case 'smallint':
    case 'integer':
    case 'int2':
    case 'int4':
    case 'oid':
    case 'xid': {
      const slow = generic(convert);
      return (s) => (isPlainInteger(s) ? s : slow(s));
    }
    case 'real':
    case 'double precision':
    case 'float4':
    case 'float8': {
      const slow = generic(convert);
      return (s) => (isPlainDecimal(s) ? s : slow(s));
    }
    case 'boolean':
    case 'bool':
      return (s) => (s === 't' || s === 'true' ? 'true' : 'false');
    case 'jsonb': {
      const slow = generic(convert);
      // jsonb output is one line of valid JSON; anything else (never seen) takes the checked path
      return (s) => (s.length > 0 && s.indexOf('\n') < 0 && s.indexOf('\r') < 0 ? s : slow(s));
    }
    case 'json':
      return generic(convert); // json keeps the client's text: whitespace, newlines, duplicate keys
    case 'bytea':
      return (s) => '"' + (convert(s) as string) + '"'; // base64 holds nothing JSON escapes
    case 'timestamp with time zone':
    case 'timestamptz':
    case 'timestamp without time zone':
    case 'timestamp':
      return (s) => jsonString(convert(s) as string);
  }
  // the remaining converters are the identity (bigint, numeric, text, uuid, dates, ...): a JSON string
  return convert('x') === 'x' ? jsonString : generic(convert);
}

const cache = new Map<string, TextToJson>();

/** The TextToJson of a type name (as converterFor takes it), cached. */
export function textToJsonFor(typeName: string): TextToJson {
  let c = cache.get(typeName);
  if (!c) {
    c = textToJson(typeName);
    cache.set(typeName, c);
  }
  return c;
}
