import type { FileHandle } from 'node:fs/promises';
import type { OutboundEvent } from './sink.ts';

/** A batch as NDJSON text: one event's JSON per line. */
export function ndjson(batch: readonly OutboundEvent[]): string {
  // join builds one flat string; += would build a tree of pieces for the encoder to flatten.
  const lines = new Array<string>(batch.length + 1);
  for (let i = 0; i < batch.length; i++) lines[i] = batch[i]!.json;
  lines[batch.length] = '';
  return lines.join('\n');
}

/** The batch last encoded by ndjsonBytes, and its bytes. */
let last: { first: OutboundEvent; last: OutboundEvent; n: number; buf: Buffer } | undefined;

/**
 * A batch as NDJSON bytes, encoded straight into one buffer (no joined string in between, which V8
 * would put in its large-object space and count towards the next full GC). The file sink and the
 * Stream retention usually take the very same batch one after the other: the last one is reused.
 */
export function ndjsonBytes(batch: readonly OutboundEvent[]): Buffer {
  const n = batch.length;
  const first = batch[0];
  const end = batch[n - 1];
  const c = last;
  if (c && first && c.n === n && c.first === first && c.last === end) return c.buf;
  let total = n;
  for (let i = 0; i < n; i++) total += batch[i]!.bytes;
  const buf = Buffer.allocUnsafe(total);
  let off = 0;
  for (let i = 0; i < n; i++) {
    off += buf.write(batch[i]!.json, off);
    buf[off++] = 10;
  }
  if (off !== total) throw new Error(`NDJSON of a batch came to ${off} bytes, its events say ${total}`);
  if (first && end) last = { first, last: end, n, buf };
  return buf;
}

/** Appends a batch to a file and makes it durable (fdatasync); returns the bytes written. */
export async function appendDurably(fh: FileHandle, batch: readonly OutboundEvent[]): Promise<number> {
  const buf = ndjsonBytes(batch);
  let off = 0;
  while (off < buf.length) off += (await fh.write(buf, off, buf.length - off)).bytesWritten;
  await fh.datasync();
  return buf.length;
}
