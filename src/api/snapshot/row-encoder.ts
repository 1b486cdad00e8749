import { CopyRowRuns, decodeField, escapedByte, hexValue, isOctal, type CopyField } from './copy-text.ts';
import { ByteKind, byteKindFor, rowShape, type RowShape, type SnapshotTable } from './rows.ts';

/** Output is handed over in pieces of about this size (one res.write each). */
export const CHUNK_BYTES = 64 * 1024;
/**
 * Lines are written into slabs of this size, reused once all their views are released: far fewer
 * allocations (external memory, which drives V8's full collections) than one buffer per piece.
 */
const SLAB_BYTES = 1024 * 1024;
/** Released slabs kept for reuse, at most. */
const FREE_SLABS = 4;

interface Slab {
  buf: Buffer;
  /** Views handed over and not released yet. */
  views: number;
  /** No longer written into: free once `views` is 0. */
  retired: boolean;
}

const TAB = 9;
const NEWLINE = 10;
const QUOTE = 34;
const BACKSLASH = 92;
const HEX = Buffer.from('0123456789abcdef');

/** How the key is written. */
const KEY_NULL = 0;
/** One integer column: its text, quoted. */
const KEY_INTEGER = 1;
/** One string-typed column: its text as a JSON string. */
const KEY_STRING = 2;
/** Anything else: RowShape.keyText on the decoded key fields. */
const KEY_GENERIC = 3;

/** A field needs the string path (decode + RowShape): byte escapes, invalid UTF-8, a column count off. */
const BAIL = -1;
/** A field the byte path does not write itself: through the column's JsonEmitter. */
const EMIT = -2;

/** Where the last field writer stopped writing (its return value is where it stopped reading). */
let written = 0;

/**
 * A table's COPY text (as `COPY ... TO STDOUT` writes it) → its Snapshot NDJSON lines, byte for byte
 * what RowShape.line gives for the parsed rows, written straight from the COPY bytes: no string per
 * field, no JSON.stringify, no string per line.
 *
 * Lines are written into 1 MiB slabs and handed over (take()) as views of about 64 KiB. Per row, in
 * one pass: the key (strings escaped as JSON.stringify escapes them, integers quoted), then the
 * `after` object (integers and booleans as they are, timestamps in their ISO form), then the
 * constant text and the object again (copyWithin). Other types (floats, json, bytea, arrays, ...)
 * go through their JsonEmitter on the decoded field; tables whose key order is not the column order
 * or whose key is not one string or integer column take a slower path (the object is written into a
 * scratch buffer first). Rows holding what COPY TO never writes (octal or hex byte escapes), invalid
 * UTF-8 or a wrong column count take the string path (RowShape.line): the output is the same
 * whatever the input.
 */
export class SnapshotRowEncoder {
  /** Rows written so far. */
  rows = 0;
  private readonly runs = new CopyRowRuns();
  private readonly shape: RowShape;
  private readonly workspaces: Set<string> | undefined;
  private readonly ncols: number;
  /** One pass writes the line: the object's keys are the columns in COPY order, a simple key. */
  private readonly onePass: boolean;
  /** Per key of the row object (RowShape.order): the column, its kind and `{"name":` / `,"name":`. */
  private readonly order: Int32Array;
  private readonly kinds: Uint8Array;
  private readonly prefixes: Buffer[];
  private readonly head: Buffer;
  private readonly afterLabel = Buffer.from(',"after":');
  private readonly middle: Buffer;
  /** `,"after":` and the first key's prefix; `}` and `middle` (one copy each instead of two). */
  private readonly afterFirst: Buffer;
  private readonly closeMiddle: Buffer;
  private readonly keyMode: number;
  private readonly keyColumn: number;
  /** The row object's bytes apart from its values, at most (values: at most 6 bytes per input byte). */
  private readonly objectFixed: number;
  /** A line's bytes apart from its key and its row object (twice). */
  private readonly lineFixed: number;
  /** The slow path's row object. */
  private scratch = Buffer.allocUnsafe(16 * 1024);
  /** Field boundaries of the current row: [starts[i], ends[i]) in its buffer. */
  private starts: Int32Array = new Int32Array(64);
  private ends: Int32Array = new Int32Array(64);
  private readonly fields: CopyField[] = [];
  /** The slab lines are written into: [flushed, pos) is written, not handed over yet. */
  private buf: Buffer = Buffer.allocUnsafe(SLAB_BYTES);
  /** The slab `buf` is; slabs with views handed over and not released; slabs free for reuse. */
  private slab: Slab = { buf: this.buf, views: 0, retired: false };
  private readonly slabs = new Map<ArrayBufferLike, Slab>([[this.buf.buffer, this.slab]]);
  private readonly free: Buffer[] = [];
  private pos = 0;
  private flushed = 0;
  private done: Buffer[] = [];

  constructor(t: SnapshotTable, workspaceColumn: string, workspaces?: Set<string>) {
    const shape = rowShape(t, workspaceColumn);
    this.shape = shape;
    this.workspaces = workspaces;
    this.ncols = t.columns.length;
    this.order = Int32Array.from(shape.order);
    this.kinds = Uint8Array.from(shape.order, (i) => byteKindFor(t.columns[i]!.type));
    this.prefixes = shape.prefixes.map((p) => Buffer.from(p));
    this.head = Buffer.from(shape.head);
    this.middle = Buffer.from(shape.middle);
    this.afterFirst = Buffer.concat([this.afterLabel, this.prefixes[0] ?? Buffer.alloc(0)]);
    this.closeMiddle = Buffer.from('}' + shape.middle);
    const only = shape.pk.length === 1 ? shape.pk[0]! : -1;
    const onlyKind = only >= 0 ? byteKindFor(t.columns[only]!.type) : ByteKind.Emitter;
    this.keyColumn = only;
    this.keyMode = !shape.pk.length
      ? KEY_NULL
      : onlyKind === ByteKind.Integer
        ? KEY_INTEGER
        : onlyKind === ByteKind.String
          ? KEY_STRING
          : KEY_GENERIC;
    this.onePass = this.ncols > 0 && shape.order.every((i, n) => i === n) && this.keyMode !== KEY_GENERIC;
    this.objectFixed = this.prefixes.reduce((n, p) => n + p.length, 0) + 2 + 7 * this.ncols;
    this.lineFixed = this.head.length + this.afterLabel.length + this.middle.length + 3;
  }

  /** Encodes the rows this chunk of COPY data completes; keeps the incomplete tail for the next. */
  write(chunk: Uint8Array): void {
    const run = this.runs.push(chunk);
    if (!run) return;
    for (let p = 0; p < run.length;) p = this.encodeRow(run, p, run.indexOf(NEWLINE, p) + 1);
  }

  /**
   * write(b.subarray(start, end)) without the subarray: when the data so far ends with a whole row
   * and so does this range (as each CopyData message does: one row), its rows are encoded in place.
   */
  writeRange(b: Buffer, start: number, end: number): void {
    if (end > start && b[end - 1] === NEWLINE && !this.runs.pending)
      for (let p = start; p < end;) p = this.encodeRow(b, p, end);
    else this.write(b.subarray(start, end));
  }

  /** The data is complete: throws when it ended inside a row; hands over what is left. */
  end(): void {
    this.runs.end();
    this.handOver();
  }

  /** Hands over the lines written so far (take() then returns them). */
  flush(): void {
    this.handOver();
  }

  /**
   * The output filled since the last call, in order: views of slabs. Passing each to release() once
   * it is no longer read (written to the socket) lets its slab be reused.
   */
  take(): Buffer[] {
    const done = this.done;
    if (done.length) this.done = [];
    return done;
  }

  /** A view take() gave is no longer read. */
  release(view: Buffer): void {
    const slab = this.slabs.get(view.buffer);
    if (!slab || --slab.views > 0 || !slab.retired) return;
    this.slabs.delete(view.buffer);
    if (this.free.length < FREE_SLABS && slab.buf.length === SLAB_BYTES) this.free.push(slab.buf);
  }

  private handOver(): void {
    if (this.pos > this.flushed) {
      this.done.push(this.buf.subarray(this.flushed, this.pos));
      this.slab.views++;
    }
    this.flushed = this.pos;
  }

  /** A new slab with room for `need` bytes (what is written is handed over). */
  private next(need: number): void {
    this.handOver();
    const old = this.slab;
    old.retired = true;
    if (old.views === 0) {
      this.slabs.delete(old.buf.buffer);
      if (this.free.length < FREE_SLABS && old.buf.length === SLAB_BYTES) this.free.push(old.buf);
    }
    this.buf = (need <= SLAB_BYTES && this.free.pop()) || Buffer.allocUnsafe(Math.max(SLAB_BYTES, need));
    this.slab = { buf: this.buf, views: 0, retired: false };
    this.slabs.set(this.buf.buffer, this.slab);
    this.pos = this.flushed = 0;
  }

  /**
   * Writes the row at `p` (or leaves it out: workspaces); returns where the next row starts. The row
   * ends by `limit` (bounds the room it needs).
   */
  private encodeRow(b: Buffer, p: number, limit: number): number {
    // Key and object (twice) take at most 6 bytes per input byte (`\u00XX`), plus the fixed parts.
    const need = this.lineFixed + 18 * (limit - p) + 2 * this.objectFixed + 8;
    if (this.pos + need > this.buf.length) this.next(need);
    let next = this.onePass ? this.lineInOnePass(b, p, limit) : BAIL;
    if (next < 0) {
      // The slow path: the object in the scratch buffer; failing that, the string path.
      const count = this.bounds(b, p);
      next = this.ends[count - 1]! + 1;
      if (this.inWorkspaces(b, count) && !(this.objectByKeys(b, count, limit) && this.writeRow(b, count)))
        this.writeLine(this.decodeRow(b, count), count);
    }
    if (this.pos - this.flushed >= CHUNK_BYTES) this.handOver();
    return next;
  }

  /** The line of the row at `p` in one pass; returns where the next row starts, or BAIL. */
  private lineInOnePass(b: Buffer, p: number, limit: number): number {
    const buf = this.buf;
    let w = this.pos;
    buf.set(this.head, w);
    w += this.head.length;
    const mode = this.keyMode;
    if (mode === KEY_NULL) w = writeNull(buf, w);
    else {
      let k = p;
      for (let n = this.keyColumn; n > 0; n--) {
        while (b[k] !== TAB) if (b[k++] === NEWLINE) return BAIL;
        k++;
      }
      if (isNull(b, k)) return BAIL;
      const r = mode === KEY_STRING ? writeJsonString(b, k, buf, w) : writeQuotedInteger(b, k, buf, w);
      if (r < 0) return BAIL;
      w = written;
    }
    // `,"after":{"first":`, then the object's values, noting the field boundaries.
    const objectStart = w + this.afterLabel.length;
    buf.set(this.afterFirst, w);
    w += this.afterFirst.length;
    const starts = this.starts;
    const ends = this.ends;
    const last = this.ncols - 1;
    let q = p;
    for (let i = 0; ; i++) {
      starts[i] = q;
      let r = writeValue(this.kinds[i]!, b, q, buf, w);
      if (r === EMIT) r = this.emitInLine(i, b, q, w, limit);
      if (r < 0) return BAIL;
      w = written;
      ends[i] = r;
      // A tab after each field but the last, a newline after the last.
      if (i === last) {
        if (b[r] !== NEWLINE) return BAIL;
        q = r + 1;
        break;
      }
      if (b[r] !== TAB) return BAIL;
      q = r + 1;
      const prefix = this.prefixes[i + 1]!;
      for (let k = 0; k < prefix.length; k++) buf[w++] = prefix[k]!;
    }
    if (this.workspaces && !this.inWorkspaces(b, this.ncols)) return q; // left out

    // `}` `,"data":{...,"after":` object `}}` newline
    const objectBytes = w + 1 - objectStart;
    if (w + this.closeMiddle.length + objectBytes + 3 > buf.length) return BAIL;
    buf.set(this.closeMiddle, w);
    w += this.closeMiddle.length;
    buf.copyWithin(w, objectStart, objectStart + objectBytes);
    w += objectBytes;
    buf[w++] = 125; // }
    buf[w++] = 125; // }
    buf[w++] = NEWLINE;
    this.pos = w;
    this.rows++;
    return q;
  }

  /**
   * The field at `q` through the i-th key's JsonEmitter, into the line; returns where it ends, or
   * BAIL when the line lacks room (the slow path sizes its buffers as it goes).
   */
  private emitInLine(i: number, b: Buffer, q: number, w: number, limit: number): number {
    let e = q;
    while (b[e] !== TAB && b[e] !== NEWLINE) e++;
    const json = this.shape.emitters[i]!(decodeField(b, q, e)!);
    // Room for it and for the rest of the line at the usual bound.
    if (w + 3 * json.length + 12 * (limit - e) + this.objectFixed + this.lineFixed > this.buf.length)
      return BAIL;
    written = w + this.buf.write(json, w);
    return e;
  }

  private inWorkspaces(b: Buffer, count: number): boolean {
    const workspaces = this.workspaces;
    if (!workspaces) return true;
    const ws = this.shape.workspace;
    return this.shape.workspaceIn(
      ws >= 0 && ws < count ? decodeField(b, this.starts[ws]!, this.ends[ws]!) : undefined,
      workspaces,
    );
  }

  /** Notes the row's field boundaries; returns the number of fields. */
  private bounds(b: Buffer, p: number): number {
    let starts = this.starts;
    let ends = this.ends;
    let count = 0;
    starts[0] = p;
    for (let i = p; ; i++) {
      const c = b[i]!;
      if (c === TAB) {
        ends[count++] = i;
        if (count === starts.length) [starts, ends] = this.grow();
        starts[count] = i + 1;
      } else if (c === NEWLINE) {
        ends[count++] = i;
        return count;
      }
    }
  }

  private grow(): [Int32Array, Int32Array] {
    const starts = new Int32Array(this.starts.length * 2);
    const ends = new Int32Array(this.ends.length * 2);
    starts.set(this.starts);
    ends.set(this.ends);
    this.starts = starts;
    this.ends = ends;
    return [starts, ends];
  }

  /** The row object in the key order into the scratch buffer (`written` bytes), from noted boundaries. */
  private objectByKeys(b: Buffer, count: number, limit: number): boolean {
    const need = this.objectFixed + 6 * (limit - this.starts[0]!);
    if (need > this.scratch.length) this.scratch = Buffer.allocUnsafe(need);
    let sc = this.scratch;
    const order = this.order;
    let w = 0;
    if (order.length === 0) sc[w++] = 123; // {
    for (let n = 0; n < order.length; n++) {
      const prefix = this.prefixes[n]!;
      for (let k = 0; k < prefix.length; k++) sc[w++] = prefix[k]!;
      const i = order[n]!;
      if (i >= count) {
        w = writeNull(sc, w);
        continue;
      }
      const q = this.starts[i]!;
      let r = writeValue(this.kinds[n]!, b, q, sc, w);
      if (r === EMIT) {
        const json = this.shape.emitters[n]!(decodeField(b, q, this.ends[i]!)!);
        const room = w + 3 * json.length + this.objectFixed + 6 * (limit - q);
        if (room > sc.length) {
          this.scratch = Buffer.allocUnsafe(room);
          this.scratch.set(sc.subarray(0, w), 0);
          sc = this.scratch;
        }
        written = w + sc.write(json, w);
        r = 0;
      }
      if (r < 0) return false;
      w = written;
    }
    sc[w++] = 125; // }
    written = w;
    return true;
  }

  /** The line of the row whose object is in the scratch buffer; false when its key needs the string path. */
  private writeRow(b: Buffer, count: number): boolean {
    const objectBytes = written;
    const kc = this.keyColumn;
    const mode = this.keyMode;
    let key: string | undefined;
    let keyBytes: number;
    if (mode === KEY_NULL) keyBytes = 4;
    else if ((mode === KEY_INTEGER || mode === KEY_STRING) && kc < count && !isNull(b, this.starts[kc]!))
      keyBytes = 6 * (this.ends[kc]! - this.starts[kc]!) + 2;
    else {
      const fields = this.fields;
      for (const i of this.shape.pk)
        if (i >= 0)
          fields[i] = i < count ? decodeField(b, this.starts[i]!, this.ends[i]!) : (undefined as never);
      key = this.shape.keyText(fields);
      keyBytes = 3 * key.length;
    }
    const need = this.lineFixed + keyBytes + 2 * objectBytes;
    if (this.pos + need > this.buf.length) this.next(need);
    const buf = this.buf;
    let pos = this.pos;
    buf.set(this.head, pos);
    pos += this.head.length;
    if (key !== undefined) pos += buf.write(key, pos);
    else if (mode === KEY_NULL) pos = writeNull(buf, pos);
    else {
      const r =
        mode === KEY_STRING
          ? writeJsonString(b, this.starts[kc]!, buf, pos)
          : writeQuotedInteger(b, this.starts[kc]!, buf, pos);
      if (r < 0) return false;
      pos = written;
    }
    const object = this.scratch.subarray(0, objectBytes);
    buf.set(this.afterLabel, pos);
    pos += this.afterLabel.length;
    buf.set(object, pos);
    pos += objectBytes;
    buf.set(this.middle, pos);
    pos += this.middle.length;
    buf.set(object, pos);
    pos += objectBytes;
    buf[pos++] = 125; // }
    buf[pos++] = 125; // }
    buf[pos++] = NEWLINE;
    this.pos = pos;
    this.rows++;
    return true;
  }

  private decodeRow(b: Buffer, count: number): CopyField[] {
    const fields = this.fields;
    for (let i = 0; i < count; i++) fields[i] = decodeField(b, this.starts[i]!, this.ends[i]!);
    return fields;
  }

  /** The string path: RowShape.line. */
  private writeLine(fields: CopyField[], count: number): void {
    // Columns the row lacks read as NULL.
    for (let i = count; i < this.ncols; i++) fields[i] = undefined as unknown as CopyField;
    const line = this.shape.line(fields);
    const need = 3 * line.length;
    if (this.pos + need > this.buf.length) this.next(need);
    this.pos += this.buf.write(line, this.pos);
    this.rows++;
  }
}

/** `\N` (NULL) at `q`: the whole field. */
function isNull(b: Buffer, q: number): boolean {
  return b[q] === BACKSLASH && b[q + 1] === 78 && (b[q + 2] === TAB || b[q + 2] === NEWLINE);
}

function writeNull(out: Buffer, w: number): number {
  out[w++] = 110; // null
  out[w++] = 117;
  out[w++] = 108;
  out[w++] = 108;
  return w;
}

/**
 * The JSON of the field at `q` (a column of this kind) into `out` at `w`: returns where the field
 * ends (its tab or newline) and sets `written`; or BAIL, or EMIT.
 */
function writeValue(kind: number, b: Buffer, q: number, out: Buffer, w: number): number {
  if (isNull(b, q)) {
    written = writeNull(out, w);
    return q + 2;
  }
  switch (kind) {
    case ByteKind.String:
      return writeJsonString(b, q, out, w);
    case ByteKind.Integer:
      return writeInteger(b, q, out, w);
    case ByteKind.Boolean:
      return writeBoolean(b, q, out, w);
    case ByteKind.TimestampTz:
      return writeTimestamp(b, q, out, w, true);
    case ByteKind.Timestamp:
      return writeTimestamp(b, q, out, w, false);
    default:
      return EMIT;
  }
}

/** An integer's text as it is (integerJson); EMIT for anything but plain ASCII. */
function writeInteger(b: Buffer, q: number, out: Buffer, w: number): number {
  for (;;) {
    const c = b[q]!;
    if (c === TAB || c === NEWLINE) break;
    if (c === BACKSLASH || c > 0x7e) return EMIT;
    out[w++] = c;
    q++;
  }
  written = w;
  return q;
}

/** An integer's text as a JSON string (the key); BAIL for anything but plain ASCII. */
function writeQuotedInteger(b: Buffer, q: number, out: Buffer, w: number): number {
  out[w++] = QUOTE;
  for (;;) {
    const c = b[q]!;
    if (c === TAB || c === NEWLINE) break;
    if (c === BACKSLASH || c === QUOTE || c < 0x20 || c > 0x7e) return BAIL;
    out[w++] = c;
    q++;
  }
  out[w++] = QUOTE;
  written = w;
  return q;
}

/** `true`/`false` as converterFor('boolean') reads `t`/`true`; EMIT when the field holds escapes. */
function writeBoolean(b: Buffer, q: number, out: Buffer, w: number): number {
  let e = q;
  for (;;) {
    const c = b[e]!;
    if (c === TAB || c === NEWLINE) break;
    if (c === BACKSLASH) return EMIT;
    e++;
  }
  const len = e - q;
  const yes =
    (len === 1 && b[q] === 116) ||
    (len === 4 && b[q] === 116 && b[q + 1] === 114 && b[q + 2] === 117 && b[q + 3] === 101);
  if (yes) {
    out[w++] = 116; // true
    out[w++] = 114;
    out[w++] = 117;
    out[w++] = 101;
  } else {
    out[w++] = 102; // false
    out[w++] = 97;
    out[w++] = 108;
    out[w++] = 115;
    out[w++] = 101;
  }
  written = w;
  return e;
}

/**
 * A timestamp's ISO-8601 JSON string, as values.ts' toIsoTz / toIso give it: the space at 10
 * becomes `T` (19 characters or more), and with a time zone a whole-hour offset (`+02`) gets `:00`.
 * EMIT for anything but printable ASCII without quotes and backslashes.
 */
function writeTimestamp(b: Buffer, q: number, out: Buffer, w: number, tz: boolean): number {
  const w0 = w;
  out[w++] = QUOTE;
  let e = q;
  for (;;) {
    const c = b[e]!;
    if (c === TAB || c === NEWLINE) break;
    if (c < 0x20 || c > 0x7e || c === QUOTE || c === BACKSLASH) return EMIT;
    out[w++] = c;
    e++;
  }
  if (e - q >= 19 && b[q + 10] === 32) {
    out[w0 + 11] = 84; // T
    if (tz) {
      const sign = b[e - 3];
      const sign6 = b[e - 6];
      if ((sign === 43 || sign === 45) && sign6 !== 43 && sign6 !== 45) {
        out[w++] = 58; // :00
        out[w++] = 48;
        out[w++] = 48;
      }
    }
  }
  out[w++] = QUOTE;
  written = w;
  return e;
}

/**
 * The COPY text at `q` (not NULL) unescaped and written as a JSON string, as JSON.stringify writes
 * it: `"`, `\` and control characters escaped, everything else (UTF-8, checked) as it is. Returns
 * where the field ends; BAIL for byte escapes (`\NNN`, `\xHH`, which COPY TO never writes) and for
 * invalid UTF-8.
 */
function writeJsonString(b: Buffer, q: number, out: Buffer, w: number): number {
  out[w++] = QUOTE;
  for (; ; q++) {
    let c = b[q]!;
    if (c >= 0x20 && c < 0x80 && c !== QUOTE && c !== BACKSLASH) {
      out[w++] = c;
      continue;
    }
    if (c === TAB || c === NEWLINE) break;
    if (c === BACKSLASH) {
      const d = b[q + 1]!;
      if (d === TAB || d === NEWLINE) {
        // A lone trailing backslash stands for itself.
      } else {
        q++;
        c = escapedByte(d);
        if (c < 0) {
          if (isOctal(d) || (d === 120 && hexValue(b[q + 1]!) >= 0)) return BAIL;
          // Any other character stands for itself.
          c = d;
        }
        if (c >= 0x20 && c < 0x80 && c !== QUOTE && c !== BACKSLASH) {
          out[w++] = c;
          continue;
        }
      }
    }
    if (c >= 0x80) {
      // A UTF-8 sequence, copied once checked (the string path decodes invalid ones to U+FFFD).
      const n = utf8Length(b, q);
      if (n === 0) return BAIL;
      out[w++] = c;
      for (let k = 1; k < n; k++) out[w++] = b[q + k]!;
      q += n - 1;
      continue;
    }
    out[w++] = BACKSLASH;
    switch (c) {
      case QUOTE:
        out[w++] = QUOTE;
        break;
      case BACKSLASH:
        out[w++] = BACKSLASH;
        break;
      case 8:
        out[w++] = 98;
        break;
      case 9:
        out[w++] = 116;
        break;
      case 10:
        out[w++] = 110;
        break;
      case 12:
        out[w++] = 102;
        break;
      case 13:
        out[w++] = 114;
        break;
      default:
        out[w++] = 117; // u00XX
        out[w++] = 48;
        out[w++] = 48;
        out[w++] = HEX[c >> 4]!;
        out[w++] = HEX[c & 15]!;
    }
  }
  out[w++] = QUOTE;
  written = w;
  return q;
}

/** The length of the well-formed UTF-8 sequence at `q` (Unicode Table 3-7), 0 when ill-formed. */
function utf8Length(b: Buffer, q: number): number {
  const c = b[q]!;
  const c1 = b[q + 1]!;
  if (c1 < 0x80 || c1 > 0xbf) {
    // Only E0/ED/F0/F4 narrow the second byte's range, within 80..BF: outside it is ill-formed.
    return 0;
  }
  if (c >= 0xc2 && c <= 0xdf) return 2;
  const c2 = b[q + 2]!;
  if (c2 < 0x80 || c2 > 0xbf) return 0;
  if (c >= 0xe0 && c <= 0xef) {
    if ((c === 0xe0 && c1 < 0xa0) || (c === 0xed && c1 > 0x9f)) return 0;
    return 3;
  }
  const c3 = b[q + 3]!;
  if (c3 < 0x80 || c3 > 0xbf) return 0;
  if (c >= 0xf0 && c <= 0xf4) {
    if ((c === 0xf0 && c1 < 0x90) || (c === 0xf4 && c1 > 0x8f)) return 0;
    return 4;
  }
  return 0;
}
