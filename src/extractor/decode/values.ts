import { parse as parseArray } from 'postgres-array';

/**
 * Typed values from Postgres' text forms (wal2json values with their numbers kept as source text,
 * pgoutput text columns). Numbers stay numbers only where exact (int2/int4/float/oid); int8 and numeric
 * travel as strings; json/jsonb as JSON; bytea as base64; timestamps as ISO-8601 strings with their
 * full microsecond precision (a JS Date would drop it).
 */
export type Converter = (raw: string) => unknown;

const identity: Converter = (s) => s;

const toNumber: Converter = (s) => {
  const n = Number(s);
  // NaN and ±Infinity have no JSON number: keep Postgres' spelling.
  return Number.isFinite(n) ? n : s;
};

const toBool: Converter = (s) => s === 't' || s === 'true';

const toJson: Converter = (s) => {
  try {
    return JSON.parse(s);
  } catch {
    return s;
  }
};

/** bytea: pgoutput sends `\x0102`, wal2json sends `0102`. */
const toBase64: Converter = (s) =>
  Buffer.from(s.startsWith('\\x') ? s.slice(2) : s, 'hex').toString('base64');

/** `2024-01-02 03:04:05.123456+00` → `2024-01-02T03:04:05.123456+00:00` */
const toIsoTz: Converter = (s) => {
  if (s.length < 19 || s.charCodeAt(10) !== 32) return s; // infinity, BC dates: keep as Postgres wrote them
  const out = s.slice(0, 10) + 'T' + s.slice(11);
  // Postgres writes a whole-hour offset as "+00"; ISO-8601 (RFC 3339) wants "+00:00".
  const sign = out.charCodeAt(out.length - 3);
  return (sign === 43 || sign === 45) &&
    out.charCodeAt(out.length - 6) !== 43 &&
    out.charCodeAt(out.length - 6) !== 45
    ? out + ':00'
    : out;
};

const toIso: Converter = (s) => (s.length >= 19 && s[10] === ' ' ? s.slice(0, 10) + 'T' + s.slice(11) : s);

export function baseType(typeName: string): string {
  // "numeric(20,5)" → "numeric", "character varying(20)" → "character varying", keep "[]"
  return typeName.replace(/\(\d+(,\s*\d+)?\)/, '').trim();
}

function scalarConverter(base: string): Converter {
  switch (base) {
    case 'smallint':
    case 'integer':
    case 'int2':
    case 'int4':
    case 'real':
    case 'double precision':
    case 'float4':
    case 'float8':
    case 'oid':
    case 'xid':
      return toNumber;
    case 'boolean':
    case 'bool':
      return toBool;
    case 'json':
    case 'jsonb':
      return toJson;
    case 'bytea':
      return toBase64;
    case 'timestamp with time zone':
    case 'timestamptz':
      return toIsoTz;
    case 'timestamp without time zone':
    case 'timestamp':
      return toIso;
    default:
      // bigint, numeric, money, text, uuid, date, time, intervals, enums, ...: the text itself
      return identity;
  }
}

const cache = new Map<string, Converter>();

/** The converter for a Postgres type name as wal2json prints it (format_type) or a pgoutput type name. */
export function converterFor(typeName: string): Converter {
  let c = cache.get(typeName);
  if (c) return c;
  const base = baseType(typeName);
  if (base.endsWith('[]')) {
    const element = scalarConverter(baseType(base.slice(0, -2)));
    c = (s) => {
      try {
        return parseArray(s, (v: string) => element(v));
      } catch {
        return s;
      }
    };
  } else {
    c = scalarConverter(base);
  }
  cache.set(typeName, c);
  return c;
}

/**
 * A wal2json value token (the JSON text wal2json printed: `42`, `"text"`, `null`, `true`) → the JSON
 * text of the typed value. Most tokens pass through untouched: wal2json's strings are valid JSON
 * strings and its integers exact JSON numbers, so no parse and no re-encode. int8/numeric/money come
 * as bare numbers that JSON.parse would round; here they are quoted as they are, exact by
 * construction. Timestamps get their ISO form; jsonb's text is spliced in as JSON (Postgres prints it
 * on one line, and large numbers inside stay exact); the rest goes through the text converters.
 */
export type TokenConverter = (token: string) => string;

const passToken: TokenConverter = (t) => t;

const quoteBareNumber: TokenConverter = (t) => {
  const c = t.charCodeAt(0);
  return c === 45 || (c >= 48 && c <= 57) ? '"' + t + '"' : t;
};

/** Timestamps hold no characters JSON escapes: the token's inner text is the Postgres text itself. */
const timestampToken =
  (convert: Converter): TokenConverter =>
  (t) =>
    t.charCodeAt(0) === 34 ? '"' + (convert(t.slice(1, -1)) as string) + '"' : t;

const jsonbToken: TokenConverter = (t) => {
  if (t.charCodeAt(0) !== 34) return t;
  const text = JSON.parse(t) as string;
  // jsonb output is one line of valid JSON; anything else (never seen) takes the checked path.
  return text.length > 0 && !/[\n\r]/.test(text) ? text : (JSON.stringify(toJson(text)) ?? 'null');
};

const viaConverter =
  (convert: Converter): TokenConverter =>
  (t) =>
    t.charCodeAt(0) === 34 ? (JSON.stringify(convert(JSON.parse(t) as string)) ?? 'null') : t;

function tokenConverter(typeName: string): TokenConverter {
  const base = baseType(typeName);
  if (base.endsWith('[]')) return viaConverter(converterFor(typeName));
  switch (base) {
    case 'bigint':
    case 'int8':
    case 'numeric':
    case 'decimal':
    case 'money':
      return quoteBareNumber;
    case 'jsonb':
      return jsonbToken;
    case 'timestamp with time zone':
    case 'timestamptz':
      return timestampToken(toIsoTz);
    case 'timestamp without time zone':
    case 'timestamp':
      return timestampToken(toIso);
  }
  const c = scalarConverter(base);
  // Numbers print as JSON numbers (NaN/Infinity as strings or null) and text as JSON strings.
  return c === identity || c === toNumber ? passToken : viaConverter(c);
}

const tokenCache = new Map<string, TokenConverter>();

export function tokenConverterFor(typeName: string): TokenConverter {
  let c = tokenCache.get(typeName);
  if (!c) {
    c = tokenConverter(typeName);
    tokenCache.set(typeName, c);
  }
  return c;
}

/** Whether a type's values can be TOASTed (variable length): only those can be "unchanged TOAST". */
export function isToastable(typeName: string): boolean {
  const base = baseType(typeName);
  if (base.endsWith('[]')) return true;
  return ![
    'smallint',
    'integer',
    'bigint',
    'real',
    'double precision',
    'boolean',
    'oid',
    'date',
    'time without time zone',
    'time with time zone',
    'timestamp without time zone',
    'timestamp with time zone',
    'uuid',
    'money',
    'interval',
    '"char"',
  ].includes(base);
}
