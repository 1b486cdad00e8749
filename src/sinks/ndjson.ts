import { errors } from '../errors.ts';
import { asPacked, type SinkBatch } from './batch.ts';
import type { DurableFile } from './durable-fs.ts';

/** A batch as NDJSON text: one event's JSON per line. */
export function ndjson(batch: SinkBatch): string {
  return ndjsonBytes(batch).toString('utf8');
}

/** A batch as NDJSON bytes, in one buffer (a packed batch's single run is not copied). */
export function ndjsonBytes(batch: SinkBatch): Buffer {
  const chunks = asPacked(batch).chunks();
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}

/**
 * Appends a batch to a file of `size` bytes and makes it durable (fdatasync); returns the bytes
 * written. A failed write or fdatasync (ENOSPC, EIO) cuts the file back to `size` before the error
 * goes up, so the retry of the whole batch never leaves a torn line followed by duplicates. After a
 * failed fsync the kernel may have dropped the dirty pages, so rewriting the batch is the only safe
 * retry (PostgreSQL's "fsyncgate" lesson). If the cut itself fails the file cannot be trusted any
 * more: a ConnectorError (not retried by the runner) stops the daemon.
 */
export function appendDurably(
  file: DurableFile,
  batch: SinkBatch,
  size: number,
  path: string,
): Promise<number> {
  // The packed runs are the NDJSON already: written from the blocks as they lie, no copy.
  const packed = asPacked(batch);
  return appendBytesDurably(file, packed.chunks(), packed.ndjsonLength(), size, path);
}

/** appendDurably for bytes of our own (a marker line): `total` is the sum of the chunks' lengths. */
export async function appendBytesDurably(
  file: DurableFile,
  chunks: Buffer[],
  total: number,
  size: number,
  path: string,
): Promise<number> {
  try {
    const written = (await file.writev(chunks)).bytesWritten;
    if (written < total) {
      // A short write (a full disk, a signal) leaves the rest: written on from where it stopped.
      const rest = Buffer.concat(chunks).subarray(written);
      for (let off = 0; off < rest.length;) off += (await file.write(rest, off)).bytesWritten;
    }
    await file.datasync();
  } catch (err) {
    try {
      await file.truncate(size);
    } catch (truncateError) {
      throw errors.sinkTruncateFailed(path, size, err as Error, truncateError as Error);
    }
    throw err;
  }
  return total;
}
