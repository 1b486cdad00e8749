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
  const chunks = asPacked(batch).chunks();
  let total = 0;
  for (const c of chunks) total += c.length;
  let written = (await fh.writev(chunks)).bytesWritten;
  // A short write (a full disk, a signal) leaves the rest: written on from where it stopped.
  for (let i = 0, at = 0; written < total && i < chunks.length; i++) {
    const c = chunks[i]!;
    const from = Math.max(0, written - at);
    at += c.length;
    for (let off = from; off < c.length;) {
      const n = (await fh.write(c, off, c.length - off)).bytesWritten;
      off += n;
      written += n;
    }
  }
  await fh.datasync();
  return total;
}
