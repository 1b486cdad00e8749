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

/** Appends a batch to a file and makes it durable (fdatasync); returns the bytes written. */
export async function appendDurably(fh: FileHandle, batch: readonly OutboundEvent[]): Promise<number> {
  const buf = Buffer.from(ndjson(batch), 'utf8');
  let off = 0;
  while (off < buf.length) off += (await fh.write(buf, off, buf.length - off)).bytesWritten;
  await fh.datasync();
  return buf.length;
}
