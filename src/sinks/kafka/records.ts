/**
 * Kafka record batches (magic v2) and Produce requests written from bytes the sink already has.
 *
 * Why our own rather than the client's Producer#send: the client builds, per message, a message
 * object, two header Maps, a Writer per record, BigInt timestamps and a BigInt murmur2 of the key,
 * then concatenates small buffers; at tens of thousands of events per second that was most of the
 * sink thread's CPU and garbage. Here a partition's records are written into one buffer straight from
 * the WireBatch's packed values, keys and header blocks. The client still does everything around it:
 * connections, metadata, InitProducerId, AddPartitionsToTxn, EndTxn, and the parsing of responses.
 *
 * Format: https://kafka.apache.org/documentation/#recordbatch (and #record).
 */
import { crc32c } from '@node-rs/crc32';
import { constants, zstdCompressSync } from 'node:zlib';
import { compressionsAlgorithms, type CompressionAlgorithmValue } from '@platformatic/kafka';

/** Bytes of `n` as a zigzag varint (Kafka's varint for signed ints; n ≥ 0 here). */
export function varIntSize(n: number): number {
  let z = n * 2;
  let size = 1;
  while (z >= 0x80) {
    z = Math.floor(z / 128);
    size++;
  }
  return size;
}

/** Writes `n` (≥ 0) as a zigzag varint at `off`; returns the offset after it. */
export function writeVarInt(buf: Uint8Array, n: number, off: number): number {
  let z = n * 2;
  while (z >= 0x80) {
    buf[off++] = (z & 0x7f) | 0x80;
    z = Math.floor(z / 128);
  }
  buf[off++] = z;
  return off;
}

/**
 * Kafka's murmur2 (Utils.murmur2 of the Java client) in 32-bit integer arithmetic: the partition of a
 * keyed record must be the one every other Kafka client picks for that key.
 */
export function murmur2(data: Uint8Array, start = 0, end = data.length): number {
  const m = 0x5bd1e995;
  const length = end - start;
  let h = 0x9747b28c ^ length;
  let i = start;
  const last4 = start + (length & ~3);
  while (i < last4) {
    let k = data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24);
    i += 4;
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m) ^ k;
  }
  // the Java client's switch with fall-through, as ifs
  const rest = length & 3;
  if (rest === 3) h ^= data[i + 2]! << 16;
  if (rest >= 2) h ^= data[i + 1]! << 8;
  if (rest >= 1) {
    h ^= data[i]!;
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}

/**
 * The partition the Java client's built-in partitioner gives a key: `toPositive(murmur2(key)) % n`,
 * toPositive clearing the sign bit (@platformatic/kafka's `compatibilityPartitioner`). Not its
 * default partitioner, which takes murmur2 as unsigned: that differs for about half the keys when the
 * partition count is not a power of two (checked against the Java client in kafka-partitioner.test.ts).
 */
export function partitionOf(key: Uint8Array, start: number, end: number, partitions: number): number {
  return (murmur2(key, start, end) & 0x7fffffff) % partitions;
}

/** Bytes of one record of a batch without its length prefix (attributes, deltas, key, value, headers). */
export function recordBodySize(offsetDelta: number, key: number, value: number, headers: number): number {
  // value -1: a null value (a tombstone), its length alone (zigzag -1: one byte)
  const valuePart = value < 0 ? 1 : varIntSize(value) + value;
  return 2 + varIntSize(offsetDelta) + varIntSize(key) + key + valuePart + headers;
}

/**
 * Writes one record at `off`: its length, attributes 0, timestamp delta 0 (a batch's records share
 * its timestamp), the offset delta, the key keys[keyStart, keyEnd), the value values[valueStart,
 * valueEnd) and the headers headers[headerStart, headerEnd) (already in wire form, count first).
 * valueEnd < valueStart writes a null value (a tombstone). Returns the offset after it.
 */
export function writeRecord(
  out: Buffer,
  off: number,
  offsetDelta: number,
  keys: Buffer,
  keyStart: number,
  keyEnd: number,
  values: Buffer,
  valueStart: number,
  valueEnd: number,
  headers: Buffer,
  headerStart: number,
  headerEnd: number,
): number {
  const keyLength = keyEnd - keyStart;
  const valueLength = valueEnd < valueStart ? -1 : valueEnd - valueStart;
  off = writeVarInt(out, recordBodySize(offsetDelta, keyLength, valueLength, headerEnd - headerStart), off);
  out[off++] = 0; // attributes
  out[off++] = 0; // timestamp delta (zigzag 0)
  off = writeVarInt(out, offsetDelta, off);
  off = writeVarInt(out, keyLength, off);
  off += keys.copy(out, off, keyStart, keyEnd);
  if (valueLength < 0)
    out[off++] = 1; // length -1, zigzag: a null value
  else {
    off = writeVarInt(out, valueLength, off);
    off += values.copy(out, off, valueStart, valueEnd);
  }
  off += headers.copy(out, off, headerStart, headerEnd);
  return off;
}

export interface BatchHeader {
  count: number;
  producerId: bigint;
  producerEpoch: number;
  baseSequence: number;
  transactional: boolean;
  compression: CompressionAlgorithmValue;
  timestamp: number;
}

/** Bytes of a record batch before its records: baseOffset … recordsCount. */
export const RECORD_BATCH_OVERHEAD = 61;
const TRANSACTIONAL = 1 << 4;
/**
 * zstd at level 1: on event JSON as fast as LZ4 (the client's, in WebAssembly) with about 2.4 times
 * smaller batches; the client's own zstd uses the default level 3, a third slower.
 */
const ZSTD_FAST = { params: { [constants.ZSTD_c_compressionLevel]: 1 } };

/** A record batch as two parts sent back to back: the 61-byte head and the (compressed) records. */
export interface RecordBatch {
  head: Buffer;
  payload: Buffer;
}

/**
 * A record batch of `records` (records written by writeRecord, back to back), compressed as told.
 * The CRC32C covers attributes to the end, as the broker checks it; it is chained over the head and
 * the payload, so the payload (the compressor's output) is never copied here.
 */
export function recordBatch(records: Buffer, h: BatchHeader): RecordBatch {
  const algorithm = compressionsAlgorithms[h.compression];
  // 'none': a copy, because `records` may be a scratch buffer written again for the next batch
  const payload: Buffer =
    h.compression === 'none'
      ? Buffer.from(records)
      : h.compression === 'zstd'
        ? zstdCompressSync(records, ZSTD_FAST)
        : algorithm.compressSync(records);
  const head = Buffer.allocUnsafe(RECORD_BATCH_OVERHEAD);
  head.writeBigInt64BE(0n, 0); // baseOffset: the broker assigns it
  head.writeInt32BE(RECORD_BATCH_OVERHEAD + payload.length - 12, 8); // batchLength: after this field
  head.writeInt32BE(-1, 12); // partitionLeaderEpoch: unknown to a producer
  head.writeInt8(2, 16); // magic
  // 17..20: crc, below
  head.writeInt16BE(algorithm.bitmask | (h.transactional ? TRANSACTIONAL : 0), 21);
  head.writeInt32BE(h.count - 1, 23); // lastOffsetDelta
  const ts = BigInt(h.timestamp);
  head.writeBigInt64BE(ts, 27); // baseTimestamp
  head.writeBigInt64BE(ts, 35); // maxTimestamp
  head.writeBigInt64BE(h.producerId, 43);
  head.writeInt16BE(h.producerEpoch, 51);
  head.writeInt32BE(h.baseSequence, 53);
  head.writeInt32BE(h.count, 57);
  head.writeUInt32BE(crc32c(payload, crc32c(head.subarray(21))) >>> 0, 17);
  return { head, payload };
}

/** The sequence after `count` records from `sequence` (Kafka's sequences wrap to 0 after 2^31 - 1). */
export function nextSequence(sequence: number, count: number): number {
  return (sequence + count) % 0x80000000;
}
