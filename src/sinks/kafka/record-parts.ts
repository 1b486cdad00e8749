import { KafkaSinkError } from './errors.ts';
import type { Msg } from './options.ts';
import { recordBodySize, varIntSize, writeRecord } from './records.ts';
import { startOf, type WireBatch } from './wire-batch.ts';

/** A (topic index, partition) pair as one number: topic * PARTITION_SPAN + partition (partitions are int32). */
export const PARTITION_SPAN = 2 ** 31;

/** What produceRecordBatches knows of a batch while it writes its record batches. */
export interface RecordParts {
  bytes: Buffer;
  keys: Buffer;
  headers: Buffer;
  batch: WireBatch;
  /** Each event's partition in its topic. */
  partition: Uint32Array;
  /** Events whose value or headers the thread encoded itself (no header block in the batch). */
  slow: ({ value: Buffer; headers: Buffer } | undefined)[];
  checkpoint?: Msg;
  /** The checkpoint record's topic index: one past the batch's topics. */
  checkpointTopic: number;
  checkpointPartition: number;
}

const NO_HEADERS = Buffer.from([0]);

/** Bytes of the records of events `list` (indices of p.batch; -1: the checkpoint record). */
export function recordsSize(p: RecordParts, list: number[]): number {
  const { ends, keyEnds } = p.batch;
  const headerEnds = p.batch.headerEnds;
  let size = 0;
  for (let d = 0; d < list.length; d++) {
    const i = list[d]!;
    let body: number;
    if (i < 0) body = recordBodySize(d, p.checkpoint!.key!.length, (p.checkpoint!.value as Buffer).length, 1);
    else if (p.batch.tombstone?.[i]) body = recordBodySize(d, keyEnds[i]! - startOf(keyEnds, i), -1, 1);
    else {
      const key = keyEnds[i]! - startOf(keyEnds, i);
      const slow = p.slow[i];
      body = slow
        ? recordBodySize(d, key, slow.value.length, slow.headers.length)
        : recordBodySize(d, key, ends[i]! - startOf(ends, i), headerEnds![i]! - startOf(headerEnds!, i));
    }
    size += varIntSize(body) + body;
  }
  return size;
}

/** The records of events `list` back to back into `out` (recordsSize bytes). */
export function writeRecords(p: RecordParts, list: number[], out: Buffer): Buffer {
  const { ends, keyEnds } = p.batch;
  const headerEnds = p.batch.headerEnds;
  const size = out.length;
  let off = 0;
  for (let d = 0; d < list.length; d++) {
    const i = list[d]!;
    if (i < 0) {
      const key = p.checkpoint!.key!;
      const value = p.checkpoint!.value as Buffer;
      off = writeRecord(out, off, d, key, 0, key.length, value, 0, value.length, NO_HEADERS, 0, 1);
      continue;
    }
    if (p.batch.tombstone?.[i]) {
      // a null value, no headers (valueEnd < valueStart: writeRecord writes a null)
      off = writeRecord(
        out,
        off,
        d,
        p.keys,
        startOf(keyEnds, i),
        keyEnds[i]!,
        p.bytes,
        1,
        0,
        NO_HEADERS,
        0,
        1,
      );
      continue;
    }
    // an event the thread encoded itself (p.slow) has its value and headers apart from the batch's
    const slow = p.slow[i];
    const value = slow ? slow.value : p.bytes;
    const headers = slow ? slow.headers : p.headers;
    const valueStart = slow ? 0 : startOf(ends, i);
    const valueEnd = slow ? slow.value.length : ends[i]!;
    const headerStart = slow ? 0 : startOf(headerEnds!, i);
    const headerEnd = slow ? slow.headers.length : headerEnds![i]!;
    const keyStart = startOf(keyEnds, i);
    off = writeRecord(
      out,
      off,
      d,
      p.keys,
      keyStart,
      keyEnds[i]!,
      value,
      valueStart,
      valueEnd,
      headers,
      headerStart,
      headerEnd,
    );
  }
  if (off !== size) throw new KafkaSinkError(`kafka: records came to ${off} bytes, expected ${size}`);
  return out;
}
