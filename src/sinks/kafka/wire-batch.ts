import type { Position } from '../../util/lsn.ts';
import type { Envelope } from '../encode.ts';
import type { PackedBatch } from '../batch.ts';
import { KafkaSinkError } from './errors.ts';
import { ATTRS, scanAttributes, STRUCTURED_BLOCK_OVERHEAD, writeStructuredBlock } from './headers.ts';

/**
 * A batch as the producer side takes it, cheap to hand to the sink's thread (every part is transferred,
 * none copied): the events' JSON as UTF-8 back to back in one buffer (event i's bytes end at ends[i]
 * and start at the previous event's end), their keys likewise, typed arrays for the rest.
 */
export interface WireBatch {
  /** Distinct topics of the batch; event i goes to `topics[topic[i]]`. */
  topics: string[];
  topic: Uint32Array;
  bytes: Uint8Array;
  ends: Uint32Array;
  keys: Uint8Array;
  keyEnds: Uint32Array;
  /**
   * Structured envelope: each event's header block (as KafkaMessageEncoder builds it), built here
   * because the producer's thread is the busier of the two; an empty block means "the thread builds
   * it" (attributes not found by the scan).
   */
  headers?: Uint8Array;
  headerEnds?: Uint32Array;
  commitLsn: BigUint64Array;
  seq: Uint32Array;
  /**
   * 1 for a tombstone (docs/governance.md `tombstones`): a null-value record with the key of the
   * delete it follows, no headers; its position is the delete's. Absent when the batch has none.
   */
  tombstone?: Uint8Array;
  /** The one buffer every array above is a view of (transferred as one, and given back for reuse). */
  buffer: ArrayBuffer;
}

/**
 * Spare WireBatch buffers. The sink's thread gives each batch's buffer back once written: a fresh
 * multi-megabyte ArrayBuffer per batch counted as external memory in the thread and made V8 run a
 * full mark-compact there every 60–90 ms (40% of the thread's time in the profile).
 */
export class WireBufferPool {
  private readonly free: ArrayBuffer[] = [];
  private readonly keep: number;

  constructor(keep = 4) {
    this.keep = keep;
  }

  /** A buffer of at least `size` bytes (the smallest spare that fits, else a new one, not zeroed). */
  take(size: number): ArrayBuffer {
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      const b = this.free[i]!;
      if (b.byteLength >= size && (best < 0 || b.byteLength < this.free[best]!.byteLength)) best = i;
    }
    if (best >= 0) return this.free.splice(best, 1)[0]!;
    // rounded up, so that batches of slightly different sizes reuse each other's buffers
    const rounded = Math.max(64 * 1024, 2 ** Math.ceil(Math.log2(size)));
    // Not from Buffer's shared pool: the buffer is transferred to the sink's thread.
    return Buffer.allocUnsafeSlow(rounded).buffer as ArrayBuffer;
  }

  /** Takes back a buffer no longer in use (beyond `keep` spares, the smallest goes to the GC). */
  give(b: ArrayBuffer): void {
    if (b.byteLength === 0) return; // detached
    this.free.push(b);
    if (this.free.length > this.keep) {
      this.free.sort((x, y) => y.byteLength - x.byteLength);
      this.free.length = this.keep;
    }
  }
}

/** Where item i of values packed back to back starts (item i ends at ends[i]: WireBatch's layout). */
export function startOf(ends: Uint32Array, i: number): number {
  return i === 0 ? 0 : ends[i - 1]!;
}

/** Item i of values packed back to back in `b`. */
export function packed(b: Buffer, ends: Uint32Array, i: number): Buffer {
  return b.subarray(startOf(ends, i), ends[i]!);
}

/** A transferred typed array's bytes as a Buffer (the same memory). */
export function asBuffer(a: Uint8Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

/** Whether a delete event of a table is followed by a tombstone (Kafka compaction drops the key). */
export type TombstonePolicy = (type: string, table: string) => boolean;

/** A policy from the tables whose deletes get tombstones. */
export function tombstonesFor(tables: readonly string[]): TombstonePolicy | undefined {
  if (tables.length === 0) return undefined;
  const set = new Set(tables);
  return (type, table) => set.has(table) && (type === 'row.delete' || type.endsWith('.deleted'));
}

export function toWireBatch(
  batch: PackedBatch,
  route: (type: string, table: string) => string,
  envelope: Envelope,
  pool?: WireBufferPool,
  tombstones?: TombstonePolicy,
): WireBatch {
  const events = batch.length;
  const runs = batch.blocks.length;
  // the JSON without the newlines that follow each event in a block
  const end = batch.ndjsonLength() - events;
  let keyChars = 0;
  let tombs = 0;
  for (let r = 0; r < runs; r++) {
    const b = batch.blocks[r]!;
    for (let i = batch.froms[r]!; i < batch.tos[r]!; i++) {
      const stone = tombstones?.(b.types[i]!, b.tables[i]!) ? 2 : 1;
      keyChars += stone * b.keys[i]!.length;
      if (stone === 2) tombs++;
    }
  }
  const n = events + tombs;
  const structured = envelope === 'structured';
  const keyBound = 3 * keyChars; // UTF-8 of a UTF-16 unit: at most 3 bytes
  const headerBound = structured ? n * STRUCTURED_BLOCK_OVERHEAD + end + keyBound : 0;
  // one buffer: the 8-byte LSNs first (alignment), then the 4-byte arrays, then the bytes
  const arrays = 8 * n + 4 * n * (structured ? 5 : 4) + (tombs ? n : 0);
  const size = arrays + end + keyBound + headerBound;
  const buffer = pool ? pool.take(size) : (Buffer.allocUnsafeSlow(size).buffer as ArrayBuffer);
  let at = 0;
  const u32 = () => {
    const a = new Uint32Array(buffer, at, n);
    at += 4 * n;
    return a;
  };
  const commitLsn = new BigUint64Array(buffer, 0, n);
  at = 8 * n;
  const w: WireBatch = {
    topics: [],
    topic: u32(),
    bytes: new Uint8Array(0),
    ends: u32(),
    keys: new Uint8Array(0),
    keyEnds: u32(),
    commitLsn,
    seq: u32(),
    buffer,
  };
  const headerEnds = structured ? u32() : undefined;
  if (tombs) {
    w.tombstone = new Uint8Array(buffer, at, n).fill(0);
    at += n;
  }
  const bytes = Buffer.from(buffer, at, end);
  const keys = Buffer.from(buffer, at + end, keyBound);
  let lastTopic = '';
  let topicIndex = -1;
  let off = 0;
  let keyEnd = 0;
  let k = 0;
  for (let r = 0; r < runs; r++) {
    const b = batch.blocks[r]!;
    const to = batch.tos[r]!;
    for (let i = batch.froms[r]!; i < to; i++, k++) {
      const t = route(b.types[i]!, b.tables[i]!);
      if (t !== lastTopic) {
        lastTopic = t;
        topicIndex = w.topics.indexOf(t);
        if (topicIndex < 0) topicIndex = w.topics.push(t) - 1;
      }
      w.topic[k] = topicIndex;
      off += b.buf.copy(bytes, off, b.start(i), b.ends[i]);
      w.ends[k] = off;
      w.keyEnds[k] = keyEnd += keys.write(b.keys[i]!, keyEnd);
      w.commitLsn[k] = b.commitLsns[i]!;
      w.seq[k] = b.seqs[i]!;
      if (tombs && tombstones!(b.types[i]!, b.tables[i]!)) {
        k++;
        w.topic[k] = topicIndex;
        w.ends[k] = off; // no value bytes
        w.keyEnds[k] = keyEnd += keys.write(b.keys[i]!, keyEnd);
        w.commitLsn[k] = b.commitLsns[i]!;
        w.seq[k] = b.seqs[i]!;
        w.tombstone![k] = 1;
      }
    }
  }
  if (off !== end) throw new KafkaSinkError(`a batch came to ${off} bytes, its events say ${end}`);
  w.bytes = bytes;
  w.keys = keys.subarray(0, keyEnd);
  if (headerEnds) {
    const headers = Buffer.from(buffer, at + end + keyBound, headerBound);
    const attrs = new Int32Array(2 * ATTRS.length);
    let hoff = 0;
    for (let i = 0; i < n; i++) {
      if (w.tombstone?.[i]) hoff = writeNoHeaders(headers, hoff);
      else if (scanAttributes(bytes, attrs, startOf(w.ends, i), w.ends[i]))
        hoff = writeStructuredBlock(bytes, keys, attrs, headers, hoff, startOf(w.keyEnds, i), w.keyEnds[i]);
      headerEnds[i] = hoff;
    }
    w.headers = headers.subarray(0, hoff);
    w.headerEnds = headerEnds;
  }
  return w;
}

/** A header block of no headers (its count, 0): a tombstone's. */
function writeNoHeaders(out: Buffer, off: number): number {
  out[off] = 0;
  return off + 1;
}

export function positionOf(b: WireBatch, i: number): Position {
  return { commitLsn: b.commitLsn[i]!, seq: b.seq[i]! };
}
