import type { FileHandle } from 'node:fs/promises';
import { asPacked, type SinkBatch } from './batch.ts';

/** A batch as NDJSON text: one event's JSON per line. */
export function ndjson(batch: SinkBatch): string {
  return ndjsonBytes(batch).toString('utf8');
}

/** A batch as NDJSON bytes, in one buffer (a packed batch's single run is not copied). */
export function ndjsonBytes(batch: SinkBatch): Buffer {
  const chunks = asPacked(batch).chunks();
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}

/** Appends a batch to a file and makes it durable (fdatasync); returns the bytes written. */
export async function appendDurably(fh: FileHandle, batch: SinkBatch): Promise<number> {
  // The packed runs are the NDJSON already: written from the blocks as they lie, no copy.
  const packed = asPacked(batch);
  const chunks = packed.chunks();
  const total = packed.ndjsonLength();
  const written = (await fh.writev(chunks)).bytesWritten;
  if (written < total) {
    // A short write (a full disk, a signal) leaves the rest: written on from where it stopped.
    const rest = Buffer.concat(chunks).subarray(written);
    for (let off = 0; off < rest.length;) off += (await fh.write(rest, off)).bytesWritten;
  }
  await fh.datasync();
  return total;
}
