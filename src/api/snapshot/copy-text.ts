/**
 * A streaming parser for PostgreSQL's COPY text format, as `COPY ... TO STDOUT` writes it: rows end
 * with `\n`, columns are separated by `\t`, `\N` alone is NULL, and a backslash escapes `\\`, `\b`,
 * `\f`, `\n`, `\r`, `\t`, `\v`, `\NNN` (octal byte), `\xHH` (hex byte); any other backslashed
 * character stands for itself. The data is UTF-8 (the client's encoding).
 *
 * Not supported (COPY TO never writes them): a backslash followed by a raw tab, newline or carriage
 * return as data, and `\r\n` line ends. A raw `\t`/`\n` is always a delimiter here.
 *
 * Fast path: each chunk is cut at its last newline (a byte that never occurs inside a UTF-8 sequence),
 * decoded once, and scanned with indexOf; only fields that hold a backslash are unescaped.
 *
 * This is the reference reading of the format (and the string path of the Snapshot route); the route
 * turns COPY bytes into NDJSON without strings in row-encoder.ts, which must agree with it.
 */

export type CopyField = string | null;

/**
 * Called once per row with the row's fields. The array is reused for the next row: read it, do not
 * keep it. `count` is the number of fields in this row (the array may be longer).
 */
export type RowHandler = (fields: CopyField[], count: number) => void;

const BACKSLASH = 92;
const NEWLINE = 0x0a;

/**
 * Cuts COPY data into runs of whole rows. Each chunk is cut at its last newline (a byte that never
 * occurs inside a UTF-8 sequence); the incomplete tail is kept (copied: the caller may reuse its
 * buffer) and prefixed to the next run.
 */
export class CopyRowRuns {
  /** Bytes of the row that is not complete yet (no newline seen since). */
  private kept: Uint8Array[] = [];
  private pendingBytes = 0;

  /** Bytes of an incomplete row kept. */
  get pending(): number {
    return this.pendingBytes;
  }

  /** The whole rows this chunk completes, ending with a newline; undefined when it completes none. */
  push(chunk: Uint8Array): Buffer | undefined {
    const last = chunk.lastIndexOf(NEWLINE);
    if (last < 0) {
      if (chunk.length > 0) {
        this.kept.push(Buffer.from(chunk));
        this.pendingBytes += chunk.length;
      }
      return undefined;
    }
    let run: Buffer;
    if (this.pendingBytes > 0) {
      this.kept.push(chunk.subarray(0, last + 1));
      run = Buffer.concat(this.kept, this.pendingBytes + last + 1);
      this.kept = [];
      this.pendingBytes = 0;
    } else {
      run = bufferOf(chunk).subarray(0, last + 1);
    }
    if (last + 1 < chunk.length) {
      this.kept.push(Buffer.from(chunk.subarray(last + 1)));
      this.pendingBytes = chunk.length - last - 1;
    }
    return run;
  }

  /** The data is complete: throws when it ended inside a row. */
  end(): void {
    if (this.pendingBytes > 0)
      throw new Error(`COPY data ends inside a row (${this.pendingBytes} bytes without a newline)`);
  }
}

export class CopyTextParser {
  private readonly runs = new CopyRowRuns();
  private readonly fields: CopyField[] = [];
  /** Complete rows parsed so far. */
  rows = 0;

  private readonly onRow: RowHandler;

  constructor(onRow: RowHandler) {
    this.onRow = onRow;
  }

  /** Parses the rows this chunk completes; keeps the incomplete tail for the next chunk. */
  write(chunk: Uint8Array): void {
    const run = this.runs.push(chunk);
    if (run) this.rows += parseCopyText(run.toString('utf8'), this.fields, this.onRow);
  }

  /** The data is complete: throws when it ended inside a row. */
  end(): void {
    this.runs.end();
  }
}

/**
 * Parses whole rows (`s` ends with a newline), calling `onRow` with `fields` (reused) per row; returns
 * the number of rows.
 */
export function parseCopyText(s: string, fields: CopyField[], onRow: RowHandler): number {
  const n = s.length;
  let rows = 0;
  // The next tab / backslash at or after the scan position (n when none): each indexOf result is
  // used until passed, so a row without tabs or backslashes costs no rescans.
  let tab = s.indexOf('\t');
  if (tab < 0) tab = n;
  let bs = s.indexOf('\\');
  if (bs < 0) bs = n;
  let pos = 0;
  while (pos < n) {
    let eol = s.indexOf('\n', pos);
    if (eol < 0) eol = n; // cannot happen: s ends with a newline
    let count = 0;
    for (;;) {
      if (tab < pos) {
        tab = s.indexOf('\t', pos);
        if (tab < 0) tab = n;
      }
      const end = tab < eol ? tab : eol;
      let v: CopyField;
      if (bs >= end) v = s.slice(pos, end);
      else {
        v =
          end - pos === 2 && bs === pos && s.charCodeAt(pos + 1) === 78 /* N */
            ? null
            : unescapeRange(s, pos, end);
        bs = s.indexOf('\\', end);
        if (bs < 0) bs = n;
      }
      fields[count++] = v;
      pos = end + 1;
      if (end === eol) break;
    }
    rows++;
    onRow(fields, count);
  }
  return rows;
}

/** The field `b[start, end)` of a run of whole rows: NULL, or its text with escapes resolved. */
export function decodeField(b: Buffer, start: number, end: number): CopyField {
  if (end - start === 2 && b[start] === BACKSLASH && b[start + 1] === 78 /* N */) return null;
  const s = b.toString('utf8', start, end);
  return s.indexOf('\\') < 0 ? s : unescapeRange(s, 0, s.length);
}

function bufferOf(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.length);
}

export function isOctal(c: number): boolean {
  return c >= 48 && c <= 55;
}

export function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** COPY's one-letter escapes (`\b \f \n \r \t \v`): the byte each stands for, by letter; -1 else. */
const ESCAPED_BYTE = new Int16Array(256).fill(-1);
for (const [letter, byte] of [
  ['b', 8],
  ['f', 12],
  ['n', 10],
  ['r', 13],
  ['t', 9],
  ['v', 11],
] as const)
  ESCAPED_BYTE[letter.charCodeAt(0)] = byte;

/** The byte a backslash followed by `c` stands for, or -1 for octal/hex/self. */
export function escapedByte(c: number): number {
  return c < 256 ? ESCAPED_BYTE[c]! : -1;
}

/** The field `s[start, end)` with its escapes resolved (it is not the NULL marker). */
export function unescapeRange(s: string, start: number, end: number): string {
  let out = '';
  let from = start;
  let i = s.indexOf('\\', start);
  while (i >= 0 && i < end) {
    out += s.slice(from, i);
    if (i + 1 >= end) {
      // A lone trailing backslash: itself.
      from = i;
      break;
    }
    const c = s.charCodeAt(i + 1);
    const simple = escapedByte(c);
    if (simple >= 0) {
      out += String.fromCharCode(simple);
      from = i + 2;
    } else if (isOctal(c) || (c === 120 /* x */ && i + 2 < end && hexValue(s.charCodeAt(i + 2)) >= 0)) {
      // Byte escapes: a byte above 0x7f is part of a UTF-8 sequence, so decode the field as bytes.
      let j = i + 1;
      let byte: number;
      if (c === 120) {
        byte = hexValue(s.charCodeAt(i + 2));
        j = i + 3;
        if (j < end && hexValue(s.charCodeAt(j)) >= 0) byte = (byte << 4) | hexValue(s.charCodeAt(j++));
      } else {
        byte = 0;
        while (j < end && j < i + 4 && isOctal(s.charCodeAt(j)))
          byte = (byte << 3) | (s.charCodeAt(j++) - 48);
        byte &= 0xff;
      }
      if (byte > 0x7f) return unescapeBytes(Buffer.from(s.slice(start, end), 'utf8'));
      out += String.fromCharCode(byte);
      from = j;
    } else {
      // Any other character (the backslash itself included) stands for itself.
      from = i + 1;
      i = s.indexOf('\\', i + 2);
      continue;
    }
    i = s.indexOf('\\', from);
  }
  return out + s.slice(from, end);
}

/** unescapeRange on bytes, for fields whose byte escapes build multi-byte characters. */
function unescapeBytes(b: Buffer): string {
  const out = Buffer.allocUnsafe(b.length);
  let o = 0;
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    if (c !== BACKSLASH || i + 1 >= b.length) {
      out[o++] = c;
      i++;
      continue;
    }
    const d = b[i + 1]!;
    const simple = escapedByte(d);
    if (simple >= 0) {
      out[o++] = simple;
      i += 2;
    } else if (isOctal(d)) {
      let j = i + 1;
      let byte = 0;
      while (j < b.length && j < i + 4 && isOctal(b[j]!)) byte = (byte << 3) | (b[j++]! - 48);
      out[o++] = byte & 0xff;
      i = j;
    } else if (d === 120 && i + 2 < b.length && hexValue(b[i + 2]!) >= 0) {
      let byte = hexValue(b[i + 2]!);
      let j = i + 3;
      if (j < b.length && hexValue(b[j]!) >= 0) byte = (byte << 4) | hexValue(b[j++]!);
      out[o++] = byte;
      i = j;
    } else {
      // Itself (a UTF-8 lead byte here; its continuation bytes follow on the plain path).
      out[o++] = d;
      i += 2;
    }
  }
  return out.toString('utf8', 0, o);
}
