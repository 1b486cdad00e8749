import { parseLsn, type Lsn } from '../../util/lsn.ts';
import { DecodeError, type Change, type Row, type RowChange } from './changes.ts';
import { jsonKey } from './row-json.ts';
import { converterFor, tokenConverterFor, type TokenConverter } from './values.ts';

/**
 * Decoder for wal2json format-version 2 (one JSON object per message; options include-lsn,
 * include-timestamp, include-xids, include-pk). Pure: bytes in, typed change out.
 *
 * It is a scanner over the message text, not JSON.parse: rows come out as JSON text per column
 * (changes.ts `Row`), mostly slices of the message itself. That is both exact and cheap:
 * - wal2json prints int8 and numeric as bare JSON numbers that JSON.parse would round above 2^53 (and
 *   numeric(20,5) 1.10000 would lose its scale); the scanner keeps their source text;
 * - string values are already valid JSON strings, so they are neither unescaped nor escaped again;
 * - no object per column, no typed row, no envelope object: it costs less CPU per change than
 *   JSON.parse of the same message (bench/: "CPU µs/change").
 * Whatever is not well-formed JSON of the expected shape is a DecodeError naming the LSN.
 */

/**
 * The options our decoder expects (pass them to START_REPLICATION). Not include-pk: the catalog knows
 * the primary key, and asking wal2json for it costs the walsender an index lookup and every message
 * its text (a `"pk"` array is still read when present).
 */
export const WAL2JSON_OPTIONS = {
  'format-version': '2',
  'include-lsn': '1',
  'include-timestamp': '1',
  'include-xids': '1',
  'include-transaction': '1',
} as const;

const QUOTE = 34;
const BACKSLASH = 92;
const COMMA = 44;
const COLON = 58;
const OPEN_BRACE = 123;
const CLOSE_BRACE = 125;
const OPEN_BRACKET = 91;
const CLOSE_BRACKET = 93;

class Malformed extends Error {
  readonly offset: number;
  constructor(message: string, offset: number) {
    super(message);
    this.offset = offset;
  }
}

const lastMatch = (re: RegExp, text: string): string | undefined => {
  let found: string | undefined;
  for (const m of text.matchAll(re)) found = m[1];
  return found;
};

/**
 * Where in a malformed message the scan stopped: the table and the column being read, by name
 * (docs/security.md: a decode error names the LSN, table, column and offset, never a value).
 */
function where(text: string, offset: number): string {
  const before = text.slice(0, offset);
  const schema = lastMatch(/"schema"\s*:\s*"((?:[^"\\]|\\.){1,128})"/g, before);
  const table = lastMatch(/"table"\s*:\s*"((?:[^"\\]|\\.){1,128})"/g, before);
  const column = lastMatch(/"name"\s*:\s*"((?:[^"\\]|\\.){1,128})"/g, before);
  return (
    (table ? `, table ${schema ? `${schema}.` : ''}${table}` : '') + (column ? `, column ${column}` : '')
  );
}

/** A cursor over one message. */
class Scanner {
  readonly t: string;
  p = 0;
  constructor(text: string) {
    this.t = text;
  }

  fail(what: string): never {
    throw new Malformed(`${what} at byte offset ${this.p}`, this.p);
  }

  ws(): void {
    let c = this.t.charCodeAt(this.p);
    while (c === 32 || c === 10 || c === 13 || c === 9) c = this.t.charCodeAt(++this.p);
  }

  expect(code: number): void {
    this.ws();
    if (this.t.charCodeAt(this.p) !== code) this.fail(`expected '${String.fromCharCode(code)}'`);
    this.p++;
  }

  /** After a member: true when another follows (comma consumed), false at the closing char. */
  more(close: number): boolean {
    this.ws();
    const c = this.t.charCodeAt(this.p);
    if (c === COMMA) {
      this.p++;
      return true;
    }
    if (c === close) {
      this.p++;
      return false;
    }
    return this.fail('expected , or a closing bracket');
  }

  /** The type texts of the last row() read (none for an old row). */
  types: string[] | undefined = undefined;

  /** Position of the next backslash at or after the last asked position; -1: none left. */
  private bs = -2;
  /** Whether the last string() token holds an escape. */
  escaped = false;

  private nextBackslash(from: number): number {
    // Scanning only moves forward, so one indexOf serves every string up to the next backslash.
    if (this.bs !== -1 && this.bs < from) this.bs = this.t.indexOf('\\', from);
    return this.bs;
  }

  /** A string token, quotes included. */
  string(): string {
    this.ws();
    const t = this.t;
    const start = this.p;
    if (t.charCodeAt(start) !== QUOTE) this.fail('expected a string');
    let q = t.indexOf('"', start + 1);
    if (q < 0) this.fail('unterminated string');
    const bs = this.nextBackslash(start + 1);
    this.escaped = bs >= 0 && bs < q;
    if (this.escaped) {
      // A quote preceded by an odd number of backslashes is part of the string.
      for (;;) {
        let b = q - 1;
        while (t.charCodeAt(b) === BACKSLASH) b--;
        if (((q - 1 - b) & 1) === 0) break;
        q = t.indexOf('"', q + 1);
        if (q < 0) this.fail('unterminated string');
      }
    }
    this.p = q + 1;
    return t.slice(start, q + 1);
  }

  /** A column name as a row key: its JSON token, in JSON.stringify's spelling (lookups use that). */
  nameKey(): string {
    const s = this.string();
    return this.escaped ? jsonKey(JSON.parse(s) as string) : s;
  }

  /** A string token's value. */
  text(): string {
    const s = this.string();
    return this.escaped ? (JSON.parse(s) as string) : s.slice(1, -1);
  }

  /** Object key (its value) followed by the colon. */
  key(): string {
    const k = this.text();
    this.expect(COLON);
    return k;
  }

  /** A scalar token as written (string with quotes, number, true/false/null). */
  scalar(): string {
    this.ws();
    const t = this.t;
    const c = t.charCodeAt(this.p);
    if (c === QUOTE) return this.string();
    if (c === OPEN_BRACE || c === OPEN_BRACKET) this.fail('expected a scalar');
    const start = this.p;
    let i = start;
    for (;;) {
      const d = t.charCodeAt(i);
      if (d === COMMA || d === CLOSE_BRACE || d === CLOSE_BRACKET || d !== d || d <= 32) break;
      i++;
    }
    if (i === start) this.fail('expected a value');
    this.p = i;
    const token = t.slice(start, i);
    // The token is row data: the error names where it is, never what it is.
    if (!isLiteral(token)) this.fail(`invalid literal of ${token.length} characters`);
    return token;
  }

  /** Skips any value (an option we don't use). */
  skip(): void {
    this.ws();
    const c = this.t.charCodeAt(this.p);
    if (c === OPEN_BRACE) {
      this.p++;
      this.ws();
      if (this.t.charCodeAt(this.p) === CLOSE_BRACE) {
        this.p++;
        return;
      }
      do {
        this.key();
        this.skip();
      } while (this.more(CLOSE_BRACE));
    } else if (c === OPEN_BRACKET) {
      this.p++;
      this.ws();
      if (this.t.charCodeAt(this.p) === CLOSE_BRACKET) {
        this.p++;
        return;
      }
      do this.skip();
      while (this.more(CLOSE_BRACKET));
    } else this.scalar();
  }

  /**
   * `[{"name":..,"type":..,"value":..},...]` → a row (JSON text per column). `tokens`: KEEP for an
   * update's new row (its tokens are kept), REUSE for its old one (a value whose token the new row had at the
   * same place, for the same column, takes the new row's JSON: see `kept`).
   */
  row(tokens: typeof NONE | typeof KEEP | typeof REUSE): Row {
    const row: Row = { keys: [], values: [] };
    // the columns' type texts, for the table's shape (an old row's are not needed)
    const types: string[] | undefined = tokens === REUSE ? undefined : [];
    this.types = types;
    if (tokens === KEEP) kept.count = 0;
    this.expect(OPEN_BRACKET);
    this.ws();
    if (this.t.charCodeAt(this.p) === CLOSE_BRACKET) {
      this.p++;
      return row;
    }
    const t = this.t;
    do {
      // Fast path: the shape wal2json prints, `{"name":"..","type":"..","value":..}`. Keys are
      // recognised by their delimiters and first letter (String#startsWith at an offset costs more
      // than the rest of a column), converters by the column index's last type.
      const at = this.p;
      if (
        t.charCodeAt(at) === OPEN_BRACE &&
        t.charCodeAt(at + 2) === 110 && // n
        t.charCodeAt(at + 6) === QUOTE &&
        t.charCodeAt(at + 7) === COLON
      ) {
        this.p = at + 8;
        const name = this.nameKey();
        let p = this.p;
        if (
          t.charCodeAt(p) === COMMA &&
          t.charCodeAt(p + 2) === 116 && // t
          t.charCodeAt(p + 6) === QUOTE &&
          t.charCodeAt(p + 7) === COLON
        ) {
          this.p = p + 8;
          const type = this.string();
          const i = row.keys.length;
          const cached = columnCache[i];
          let convert: TokenConverter;
          // the type text kept for the shape: the cached copy, so the message's own slice is not kept
          let typeText = type;
          if (cached !== undefined && cached.type === type) {
            convert = cached.convert;
            typeText = cached.type;
          } else {
            convert = converterForToken(type);
            if (i < COLUMN_CACHE_SIZE) columnCache[i] = { type, convert };
          }
          p = this.p;
          if (
            t.charCodeAt(p) === COMMA &&
            t.charCodeAt(p + 2) === 118 && // v
            t.charCodeAt(p + 7) === QUOTE &&
            t.charCodeAt(p + 8) === COLON
          ) {
            this.p = p + 9;
            const value = this.scalar();
            if (t.charCodeAt(this.p) === CLOSE_BRACE) {
              this.p++;
              row.keys.push(name);
              types?.push(typeText);
              if (tokens === NONE) row.values.push(value === 'null' ? value : convert(value));
              else row.values.push(keptJson(tokens, i, name, value, convert));
              continue;
            }
          }
        }
        this.p = at; // another member order: the general path below
      }
      let name: string | undefined;
      let type: string | undefined;
      let value: string | undefined;
      this.expect(OPEN_BRACE);
      do {
        const k = this.key();
        if (k === 'name') name = this.nameKey();
        else if (k === 'type') type = this.string();
        else if (k === 'value') value = this.scalar();
        else this.skip();
      } while (this.more(CLOSE_BRACE));
      if (name === undefined || type === undefined || value === undefined)
        this.fail('column without name, type or value');
      row.keys.push(name);
      row.values.push(value === 'null' ? value : converterForToken(type)(value));
      types?.push(type);
    } while (this.more(CLOSE_BRACKET));
    return row;
  }

  /** `[{"name":..,"type":..},...]` → column names. */
  names(): string[] {
    const out: string[] = [];
    this.expect(OPEN_BRACKET);
    this.ws();
    if (this.t.charCodeAt(this.p) === CLOSE_BRACKET) {
      this.p++;
      return out;
    }
    do {
      this.expect(OPEN_BRACE);
      do {
        if (this.key() === 'name') out.push(this.text());
        else this.skip();
      } while (this.more(CLOSE_BRACE));
    } while (this.more(CLOSE_BRACKET));
    return out;
  }
}

const NONE = 0;
const KEEP = 1;
const REUSE = 2;

/**
 * The new row's value tokens of the message being scanned, by column index, with their JSON, up to the
 * first column that took another path. Under REPLICA IDENTITY FULL an update's `identity` repeats
 * most of `columns` token for token (wal2json prints them in that order); those are compared, not
 * converted again (a jsonb unescaped, an array parsed and printed, a bytea re-encoded), and the old
 * row gets the very same string. A column left out of `columns` (unchanged TOAST) shifts the indexes:
 * the name check then stops the reuse, never mismatches it.
 */
const kept = { count: 0, tokens: [] as string[], names: [] as string[], values: [] as string[] };

/** A value's JSON in an update's new row (kept) or old row (reused when the new row had it). */
function keptJson(tokens: number, i: number, name: string, value: string, convert: TokenConverter): string {
  if (tokens === REUSE && i < kept.count && kept.tokens[i] === value && kept.names[i] === name)
    return kept.values[i]!;
  const json = value === 'null' ? value : convert(value);
  if (tokens === KEEP && kept.count === i) {
    kept.tokens[i] = value;
    kept.names[i] = name;
    kept.values[i] = json;
    kept.count = i + 1;
  }
  return json;
}

const byTypeToken = new Map<string, TokenConverter>();

/**
 * Per column index, the last type token seen there and its converter: consecutive changes of a table
 * repeat them, and a string comparison is cheaper than a map lookup (which hashes the token).
 */
interface CachedColumn {
  type: string;
  convert: TokenConverter;
}
const COLUMN_CACHE_SIZE = 256;
const columnCache: (CachedColumn | undefined)[] = [];

/** The value converter for a `"type"` token as printed (the token itself is the cache key). */
function converterForToken(typeToken: string): TokenConverter {
  let c = byTypeToken.get(typeToken);
  if (!c) {
    c = tokenConverterFor(JSON.parse(typeToken) as string);
    if (byTypeToken.size < 10_000) byTypeToken.set(typeToken, c);
  }
  return c;
}

function isLiteral(token: string): boolean {
  if (token === 'true' || token === 'false' || token === 'null') return true;
  // A JSON number: -?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?
  const n = token.length;
  let i = 0;
  if (token.charCodeAt(0) === 45) i++;
  const digitsFrom = i;
  while (i < n && isDigit(token.charCodeAt(i))) i++;
  if (i === digitsFrom || (token.charCodeAt(digitsFrom) === 48 && i - digitsFrom > 1)) return false;
  if (i < n && token.charCodeAt(i) === 46) {
    const f = ++i;
    while (i < n && isDigit(token.charCodeAt(i))) i++;
    if (i === f) return false;
  }
  if (i < n && (token.charCodeAt(i) | 32) === 101) {
    i++;
    if (i < n && (token.charCodeAt(i) === 43 || token.charCodeAt(i) === 45)) i++;
    const e = i;
    while (i < n && isDigit(token.charCodeAt(i))) i++;
    if (i === e) return false;
  }
  return i === n;
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

const K_OTHER = 0;
const K_ACTION = 1;
const K_XID = 2;
const K_TIMESTAMP = 3;
const K_LSN = 4;
const K_NEXTLSN = 5;
const K_SCHEMA = 6;
const K_TABLE = 7;
const K_COLUMNS = 8;
const K_IDENTITY = 9;
const K_PK = 10;
const K_TRANSACTIONAL = 11;
const K_PREFIX = 12;
const K_CONTENT = 13;

/** wal2json's top-level keys and their codes. */
const KEY_CODES = new Map<string, number>([
  ['action', K_ACTION],
  ['xid', K_XID],
  ['timestamp', K_TIMESTAMP],
  ['lsn', K_LSN],
  ['nextlsn', K_NEXTLSN],
  ['schema', K_SCHEMA],
  ['table', K_TABLE],
  ['columns', K_COLUMNS],
  ['identity', K_IDENTITY],
  ['pk', K_PK],
  ['transactional', K_TRANSACTIONAL],
  ['prefix', K_PREFIX],
  ['content', K_CONTENT],
]);

/** The same keys by first letter: `"name":` and its code. */
const TOP_KEYS_BY_LETTER = new Map<number, { token: string; code: number }[]>();
for (const [name, code] of KEY_CODES) {
  const letter = name.charCodeAt(0);
  const list = TOP_KEYS_BY_LETTER.get(letter) ?? [];
  list.push({ token: `"${name}":`, code });
  TOP_KEYS_BY_LETTER.set(letter, list);
}

/**
 * The top-level key at the cursor, recognised in place (no string made): its first three letters,
 * length and closing `":` identify wal2json's keys (String#startsWith at an offset costs more).
 */
function topKey(s: Scanner): number {
  const t = s.t;
  const p = s.p;
  if (t.charCodeAt(p) === QUOTE) {
    const candidates = TOP_KEYS_BY_LETTER.get(t.charCodeAt(p + 1));
    if (candidates) {
      for (const { token, code } of candidates) {
        const end = p + token.length;
        if (
          t.charCodeAt(p + 2) === token.charCodeAt(2) &&
          t.charCodeAt(p + 3) === token.charCodeAt(3) &&
          t.charCodeAt(end - 2) === QUOTE &&
          t.charCodeAt(end - 1) === COLON
        ) {
          s.p = end;
          return code;
        }
      }
    }
  }
  return KEY_CODES.get(s.key()) ?? K_OTHER;
}

/** One message's fields, as the scanner found them. */
class Fields {
  action: string | undefined = undefined;
  xid: string | undefined = undefined;
  lsn: string | undefined = undefined;
  nextlsn: string | undefined = undefined;
  timestamp: string | undefined = undefined;
  schema: string | undefined = undefined;
  table: string | undefined = undefined;
  columns: Row | undefined = undefined;
  types: string[] | undefined = undefined;
  identity: Row | undefined = undefined;
  pk: string[] | undefined = undefined;
  transactional: string | undefined = undefined;
  prefix: string | undefined = undefined;
  content: string | undefined = undefined;
}

function scan(text: string): Fields {
  const s = new Scanner(text);
  kept.count = 0; // tokens of this message only
  const f = new Fields();
  s.expect(OPEN_BRACE);
  s.ws();
  if (text.charCodeAt(s.p) !== CLOSE_BRACE) {
    do {
      s.ws();
      switch (topKey(s)) {
        case K_ACTION:
          f.action = s.text();
          break;
        case K_XID:
          f.xid = s.scalar();
          break;
        case K_TIMESTAMP:
          // Row changes repeat the commit time BEGIN already gave.
          if (f.action === 'B' || f.action === undefined) f.timestamp = s.text();
          else s.skip();
          break;
        case K_LSN:
          f.lsn = s.text();
          break;
        case K_NEXTLSN:
          f.nextlsn = s.text();
          break;
        case K_SCHEMA:
          f.schema = s.text();
          break;
        case K_TABLE:
          f.table = s.text();
          break;
        case K_COLUMNS:
          // only an update has an identity after its columns (wal2json prints "action" first)
          f.columns = s.row(f.action === 'U' ? KEEP : NONE);
          f.types = s.types;
          break;
        case K_IDENTITY:
          f.identity = s.row(REUSE);
          break;
        case K_PK:
          f.pk = s.names();
          break;
        case K_TRANSACTIONAL:
          f.transactional = s.scalar();
          break;
        case K_PREFIX:
          f.prefix = s.text();
          break;
        case K_CONTENT:
          f.content = s.text();
          break;
        default:
          s.skip();
      }
    } while (s.more(CLOSE_BRACE));
  } else s.p++;
  s.ws();
  if (s.p !== text.length) s.fail('trailing characters');
  return f;
}

function need<T>(value: T | undefined, what: string, walLsn: string): T {
  if (value === undefined)
    throw new DecodeError(
      walLsn,
      `wal2json message without "${what}" (is include-lsn/include-timestamp/include-xids on?)`,
    );
  return value;
}

const isoTime = converterFor('timestamp with time zone');

export function decodeWal2Json(payload: Buffer | string, walLsn: string): Change {
  const text = typeof payload === 'string' ? payload : payload.toString(); // UTF-8; no encoding argument: no lookup of one
  let f: Fields;
  try {
    f = scan(text);
  } catch (err) {
    if (!(err instanceof Malformed)) throw err;
    throw new DecodeError(walLsn, `unexpected wal2json message (${err.message}${where(text, err.offset)})`);
  }
  return decodeFields(f, text, walLsn);
}

function decodeFields(f: Fields, text: string, walLsn: string): Change {
  const lsn = (what: 'lsn' | 'nextlsn'): Lsn => {
    const t = need(f[what], what, walLsn);
    try {
      return parseLsn(t);
    } catch (err) {
      throw new DecodeError(walLsn, (err as Error).message);
    }
  };
  switch (f.action) {
    case 'B':
      return {
        kind: 'begin',
        xid: Number(need(f.xid, 'xid', walLsn)),
        commitLsn: lsn('lsn'),
        endLsn: lsn('nextlsn'),
        commitTime: isoTime(need(f.timestamp, 'timestamp', walLsn)) as string,
      };
    case 'C':
      return { kind: 'commit', commitLsn: lsn('lsn'), endLsn: lsn('nextlsn') };
    case 'I':
    case 'U':
    case 'D': {
      const kind = f.action === 'I' ? 'insert' : f.action === 'U' ? 'update' : 'delete';
      const change: RowChange = {
        kind,
        lsn: need(f.lsn, 'lsn', walLsn),
        schema: need(f.schema, 'schema', walLsn),
        table: need(f.table, 'table', walLsn),
        new: kind === 'delete' ? null : need(f.columns, 'columns', walLsn),
        old: f.identity ?? null,
        ...(f.pk ? { pk: f.pk } : {}),
      };
      // The table's columns as this change shows them; an update may leave out unchanged TOAST values.
      if (change.new && f.types)
        change.shape = { keys: change.new.keys, types: f.types, partial: kind === 'update' };
      return change;
    }
    case 'T':
      return {
        kind: 'truncate',
        lsn: need(f.lsn, 'lsn', walLsn),
        schema: need(f.schema, 'schema', walLsn),
        table: need(f.table, 'table', walLsn),
      };
    case 'M':
      return {
        kind: 'message',
        lsn: lsn('lsn'),
        transactional: f.transactional === 'true',
        prefix: f.prefix ?? '',
        content: f.content ?? '',
      };
    default:
      throw new DecodeError(
        walLsn,
        `unknown wal2json action ${/^[A-Za-z]$/.test(f.action ?? '') ? JSON.stringify(f.action) : `of ${f.action?.length ?? 0} characters`}`,
      );
  }
}
