import { createRecord, Writer } from '@platformatic/kafka';
import { STRUCTURED_CONTENT_TYPE } from '../encode.ts';
import { varIntSize, writeVarInt } from './records.ts';

/** The CloudEvents attributes of a structured event's headers, in `binaryAttributes` order. */
export const ATTRS = [
  'specversion',
  'id',
  'source',
  'type',
  'time',
  'lsn',
  'commitlsn',
  'xid',
  'partitionkey',
  'subject',
] as const;
export const SUBJECT = ATTRS.indexOf('subject');
export const PARTITIONKEY = ATTRS.indexOf('partitionkey');
const ATTR_SLOT = new Map<string, number>(ATTRS.map((a, i) => [a, i]));
const DATA = -1;
const OTHER = -2;
/** The order the extractor writes them in (checked first, any order is read). */
const JSON_ORDER = [
  'specversion',
  'id',
  'source',
  'time',
  'datacontenttype',
  'lsn',
  'commitlsn',
  'xid',
  'type',
  'subject',
  'partitionkey',
  'data',
].map((k) => ({ quoted: `"${k}":`, slot: ATTR_SLOT.get(k) ?? (k === 'data' ? DATA : OTHER) }));
export const HEADER_NAMES: readonly Buffer[] = ATTRS.map((a) => Buffer.from(`ce_${a}`));
export const CONTENT_TYPE = Buffer.from('content-type');
export const STRUCTURED_CONTENT_TYPE_BUF = Buffer.from(STRUCTURED_CONTENT_TYPE);
/** The same on the wire (length-prefixed), for encoded header blocks. */
const HEADER_WIRE_NAMES: readonly Buffer[] = HEADER_NAMES.map(wireName);
const CONTENT_TYPE_WIRE = Buffer.concat([wireName(CONTENT_TYPE), wireName(STRUCTURED_CONTENT_TYPE_BUF)]);

/** The keys JSON_ORDER expects, as bytes (with their quotes and colon). */
const JSON_ORDER_BYTES: readonly Uint8Array[] = JSON_ORDER.map((k) => Buffer.from(k.quoted));
const QUOTE = 34;
const BACKSLASH = 92;

/** Offset of the closing quote of a JSON string whose text starts at `i`; -1 at an escape or `n`. */
function stringEnd(b: Uint8Array, i: number, n: number): number {
  for (; i < n; i++) {
    const c = b[i]!;
    if (c === QUOTE) return i;
    if (c === BACKSLASH) return -1;
  }
  return -1;
}

/**
 * Finds the context attributes at the head of an event's JSON bytes without parsing it:
 * `at[2i]`/`at[2i+1]` are the start and end offsets of attribute ATTRS[i]'s UTF-8 text. The extractor
 * writes every attribute before `data`, as strings (`xid` an integer). Returns false for anything else
 * (an escape before `data`, an attribute after it, no subject...): the caller then parses the event.
 * Bytes, not text: UTF-8 never has a quote, backslash or comma inside a multi-byte character, so the
 * offsets are exact for any text.
 */
export function scanAttributes(json: Uint8Array, at: Int32Array, from = 0, to = json.length): boolean {
  // (from, to: the event's bytes within `json`; the offsets in `at` are then offsets in `json`)
  at.fill(-1);
  if (json[from] !== 123 /* { */) return false;
  let i = from + 1;
  let expect = 0;
  for (;;) {
    if (json[i] !== QUOTE) return false;
    let slot: number;
    let v: number;
    const known = expect < JSON_ORDER_BYTES.length ? JSON_ORDER_BYTES[expect]! : undefined;
    if (known && startsWithAt(json, known, i, to)) {
      slot = JSON_ORDER[expect]!.slot;
      v = i + known.length;
      expect++;
    } else {
      const keyEnd = stringEnd(json, i + 1, to);
      if (keyEnd < 0 || json[keyEnd + 1] !== 58 /* : */) return false;
      const key = Buffer.from(json.buffer, json.byteOffset + i + 1, keyEnd - i - 1).toString('utf8');
      slot = key === 'data' ? DATA : (ATTR_SLOT.get(key) ?? OTHER);
      v = keyEnd + 2;
    }
    if (slot === DATA) break;
    const c = json[v]!;
    let start: number;
    let end: number;
    if (c === QUOTE) {
      start = v + 1;
      end = stringEnd(json, start, to);
      if (end < 0) return false;
      i = end + 1;
    } else if (c >= 48 && c <= 57) {
      start = v;
      end = v + 1;
      while (json[end]! >= 48 && json[end]! <= 57) end++;
      i = end;
    } else return false;
    if (slot >= 0) {
      at[2 * slot] = start;
      at[2 * slot + 1] = end;
    }
    if (json[i] !== 44 /* , */) return false;
    i++;
  }
  for (let k = 0; k < at.length; k++) if (at[k]! < 0) return false;
  return true;
}

function startsWithAt(b: Uint8Array, prefix: Uint8Array, at: number, to: number): boolean {
  if (at + prefix.length > to) return false;
  for (let k = 0; k < prefix.length; k++) if (b[at + k] !== prefix[k]) return false;
  return true;
}

/** A header name with its length prefix, as it goes on the wire. */
function wireName(name: Buffer): Buffer {
  const out = Buffer.allocUnsafe(varIntSize(name.length) + name.length);
  name.copy(out, writeVarInt(out, name.length, 0));
  return out;
}

/**
 * A record's headers already in wire form: [count][name length][name][value length][value]... The
 * client writes a record's headers with `Writer#appendVarIntMap`, four small Buffers per header, most
 * of its CPU and garbage per record with our eleven headers. A header Map holding only this key
 * carries the encoded block instead (see headerBlocks).
 */
export const HEADER_BLOCK = Buffer.from('tag-connector/header-block');

let headerBlockState: boolean | undefined;

/**
 * Teaches the client's Writer to append a HEADER_BLOCK entry as is, then checks on a sample record
 * that the bytes are exactly those of the plain headers; if not (another client version), the block
 * stays unused and headers go as Maps.
 */
export function headerBlocks(): boolean {
  if (headerBlockState !== undefined) return headerBlockState;
  headerBlockState = false;
  try {
    const proto = Writer.prototype as unknown as {
      appendVarIntMap(value: Map<unknown, unknown> | null | undefined, entryWriter: unknown): unknown;
      append(b: Buffer): unknown;
    };
    const original = proto.appendVarIntMap;
    proto.appendVarIntMap = function (value, entryWriter) {
      if (value?.size === 1) {
        const [k, v] = value.entries().next().value as [unknown, unknown];
        if (k === HEADER_BLOCK) return this.append(v as Buffer);
      }
      return original.call(this, value, entryWriter);
    };
    const names = [Buffer.from('ce_id'), Buffer.from('content-type'), Buffer.from('x'.repeat(70))];
    const values = [Buffer.from('0/16B3748/0'), Buffer.from('é'.repeat(80)), Buffer.alloc(0)];
    const plain = new Map(names.map((n, i) => [n, values[i]!]));
    const block = Buffer.allocUnsafe(400);
    let off = writeVarInt(block, names.length, 0);
    for (let i = 0; i < names.length; i++) {
      off = writeVarInt(block, names[i]!.length, off);
      off += names[i]!.copy(block, off);
      off = writeVarInt(block, values[i]!.length, off);
      off += values[i]!.copy(block, off);
    }
    const message = { key: Buffer.from('k'), value: Buffer.from('{}'), topic: 't', timestamp: 5n };
    const expected = createRecord({ ...message, headers: plain }, 3, 1n).buffer;
    const got = createRecord(
      { ...message, headers: new Map([[HEADER_BLOCK, block.subarray(0, off)]]) },
      3,
      1n,
    ).buffer;
    headerBlockState = expected.equals(got);
  } catch {
    headerBlockState = false;
  }
  return headerBlockState;
}

/** Bytes of a structured header block whose attributes are at `at` (scanAttributes) with a key of `keyLength`. */
export function structuredBlockSize(at: Int32Array, keyLength: number): number {
  const subjectLength = at[2 * SUBJECT + 1]! - at[2 * SUBJECT]!;
  let size = varIntSize(ATTRS.length + (subjectLength > 0 ? 1 : 0)) + CONTENT_TYPE_WIRE.length;
  for (let i = 0; i < ATTRS.length; i++) {
    const n = i === PARTITIONKEY ? keyLength : at[2 * i + 1]! - at[2 * i]!;
    if (i === SUBJECT && n === 0) continue;
    size += HEADER_WIRE_NAMES[i]!.length + varIntSize(n) + n;
  }
  return size;
}

/**
 * An upper bound of structuredBlockSize for any event: the attribute values are disjoint parts of the
 * event's JSON, so the names, the content type and a 5-byte length per header plus the JSON's and the
 * key's own lengths always suffice.
 */
export const STRUCTURED_BLOCK_OVERHEAD =
  5 + CONTENT_TYPE_WIRE.length + HEADER_WIRE_NAMES.reduce((sum, name) => sum + name.length + 5, 0);

/**
 * Writes the structured header block of the event whose JSON is `value` (attributes at `at`, from
 * scanAttributes) and partition key `key` into `out` at `off`; returns the offset after it. The same
 * bytes as the client writes for the headers binaryAttributes gives (no subject header for "").
 */
export function writeStructuredBlock(
  value: Uint8Array,
  key: Uint8Array,
  at: Int32Array,
  out: Uint8Array,
  off: number,
  keyFrom = 0,
  keyTo = key.length,
): number {
  const subjectLength = at[2 * SUBJECT + 1]! - at[2 * SUBJECT]!;
  off = writeVarInt(out, ATTRS.length + (subjectLength > 0 ? 1 : 0), off);
  for (let i = 0; i < ATTRS.length; i++) {
    if (i === SUBJECT) off = put(CONTENT_TYPE_WIRE, 0, CONTENT_TYPE_WIRE.length, out, off);
    const start = at[2 * i]!;
    const end = at[2 * i + 1]!;
    if (i === SUBJECT && end === start) continue;
    const name = HEADER_WIRE_NAMES[i]!;
    off = put(name, 0, name.length, out, off);
    if (i === PARTITIONKEY) {
      off = writeVarInt(out, keyTo - keyFrom, off);
      off = put(key, keyFrom, keyTo, out, off);
    } else {
      off = writeVarInt(out, end - start, off);
      off = put(value, start, end, out, off);
    }
  }
  return off;
}

/**
 * Copies src[from, to) to out at `off`; returns the offset after it. A loop for the few bytes of a
 * header (Buffer#copy costs more in its argument checks than in copying them), native beyond.
 */
function put(src: Uint8Array, from: number, to: number, out: Uint8Array, off: number): number {
  const n = to - from;
  if (n > 48) out.set(src.subarray(from, to), off);
  else for (let k = 0; k < n; k++) out[off + k] = src[from + k]!;
  return off + n;
}
