import {
  baseType,
  converterFor,
  jsonKey,
  jsonString,
  textToJsonFor,
  type Row,
  type TextToJson,
} from '../decode/index.ts';
import { WatermarkError } from './messages.ts';

/**
 * A chunk's rows as the database sends them (sql.ts readChunk): the JSON text of an array of rows,
 * each an array of the columns' text forms as JSON strings (or null), `[["1", "a\"b", null], ...]`.
 * Turned into Rows here by scanning that text once: the driver does not parse it (an array and a
 * string per value, then JSON.stringify again, were a fifth of the daemon's CPU per read).
 *
 * Each value's JSON is what the pgoutput decoder writes for the same text (value-json.ts
 * textToJsonFor), so a read carries the bytes a live insert of the row carries. Text-like values
 * (text, int8, numeric, uuid, dates, ...) are the database's JSON string itself: PostgreSQL escapes a
 * string for JSON exactly as JSON.stringify does (`"`, `\`, `\b\f\n\r\t`, other controls as `\u00xx`),
 * so it is sliced, never unescaped and escaped again. Other types get the text (unescaped only when
 * it holds an escape) and go through textToJsonFor.
 */

const QUOTE = 34;
const BACKSLASH = 92;
const COMMA = 44;
const OPEN = 91; // [
const CLOSE = 93; // ]

/** JSON whitespace. */
const isSpace = (c: number) => c === 32 || c === 10 || c === 13 || c === 9;

/** A column's value: its JSON string token (or `null`) → the JSON of the typed value. */
type TokenToJson = (token: string) => string;

const passToken: TokenToJson = (t) => t;

function tokenToJson(type: string): TokenToJson {
  const toJson: TextToJson = textToJsonFor(type);
  // value-json.ts gives jsonString itself for the text-like types: the token is that JSON already.
  if (toJson === jsonString) return passToken;
  const base = baseType(type);
  if (base === 'timestamp with time zone' || base === 'timestamp without time zone') {
    // value-json.ts quotes the ISO form with jsonString: it holds nothing JSON escapes, so quote it.
    const iso = converterFor(type);
    return (t) => {
      if (t === 'null') return t;
      if (t.indexOf('\\') >= 0) return toJson(JSON.parse(t) as string);
      return '"' + (iso(t.slice(1, -1)) as string) + '"';
    };
  }
  return (t) => (t === 'null' ? t : toJson(t.indexOf('\\') < 0 ? t.slice(1, -1) : (JSON.parse(t) as string)));
}

/** Where the JSON string token starting at `q` (a quote) ends (after its closing quote). */
function stringEnd(s: string, q: number): number {
  for (let e = s.indexOf('"', q + 1); e >= 0; e = s.indexOf('"', e + 1)) {
    // a quote preceded by an odd run of backslashes is escaped
    let b = e - 1;
    while (s.charCodeAt(b) === BACKSLASH) b--;
    if ((e - 1 - b) % 2 === 0) return e + 1;
  }
  return -1;
}

/**
 * The chunk's rows, in order, as Rows (values as the live path's JSON), one at a time: each row is
 * mapped and handed to the sinks before the next is made, so a chunk's rows never outlive a young
 * generation collection (a chunk held as 8,192 Rows was promoted and collected by the old
 * generation: a third of the CPU per read). next() throws WatermarkError when the text is not an
 * array of rows of `columns.length` strings or nulls.
 */
export class ChunkRows {
  private readonly text: string;
  private readonly keys: string[];
  private readonly convert: TokenToJson[];
  private p = 0;
  private ended = false;
  /** Rows made so far. */
  count = 0;

  constructor(text: string, columns: readonly string[], types: readonly string[]) {
    this.text = text;
    this.keys = columns.map((c) => jsonKey(c));
    this.convert = types.map((t) => tokenToJson(t));
    this.skip();
    if (text.charCodeAt(this.p) !== OPEN) throw this.bad('not an array');
    this.p++;
    this.skip();
    if (text.charCodeAt(this.p) === CLOSE) {
      this.p++;
      this.end();
    }
  }

  /** The next row, undefined after the last. */
  next(): Row | undefined {
    if (this.ended) return undefined;
    const text = this.text;
    const n = this.keys.length;
    const row = this.count;
    if (text.charCodeAt(this.p) !== OPEN) throw this.bad(`row ${row} is not an array`);
    this.p++;
    const values = new Array<string>(n);
    this.skip();
    if (n === 0 && text.charCodeAt(this.p) === CLOSE)
      this.p++; // a table without columns
    else
      for (let i = 0; ; i++) {
        if (i >= n) throw this.bad(`row ${row} has more than ${n} values`);
        const p = this.p;
        const c = text.charCodeAt(p);
        let token: string;
        if (c === QUOTE) {
          const e = stringEnd(text, p);
          if (e < 0) throw this.bad('unterminated string');
          token = text.slice(p, e);
          this.p = e;
        } else if (text.startsWith('null', p)) {
          token = 'null';
          this.p = p + 4;
        } else throw this.bad(`row ${row}: a value is neither a string nor null`);
        values[i] = this.convert[i]!(token);
        this.skip();
        const sep = text.charCodeAt(this.p++);
        if (sep === COMMA) {
          this.skip();
          continue;
        }
        if (sep !== CLOSE) throw this.bad(`row ${row}: expected , or ]`);
        if (i !== n - 1) throw this.bad(`row ${row} has ${i + 1} values, not ${n}`);
        break;
      }
    this.count++;
    this.skip();
    const sep = text.charCodeAt(this.p++);
    if (sep === COMMA) this.skip();
    else if (sep === CLOSE) this.end();
    else throw this.bad('expected , or ] after a row');
    return { keys: this.keys, values };
  }

  /** After the closing `]`: nothing but whitespace may follow. */
  private end(): void {
    this.skip();
    if (this.p < this.text.length) throw this.bad('text after the rows');
    this.ended = true;
  }

  private skip(): void {
    const text = this.text;
    let p = this.p;
    while (p < text.length && isSpace(text.charCodeAt(p))) p++;
    this.p = p;
  }

  private bad(why: string): WatermarkError {
    return new WatermarkError(`chunk rows: ${why}`);
  }
}

/** The chunk rows' JSON text for rows held as arrays (tests, and high watermarks of older versions). */
export function chunkRowsText(rows: readonly (readonly (string | null)[])[]): string {
  return JSON.stringify(rows);
}
