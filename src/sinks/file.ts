import { open, stat, type FileHandle } from 'node:fs/promises';
import { parseEventId, type Position } from '../util/lsn.ts';
import { appendDurably } from './ndjson.ts';
import type { SinkBatch } from './batch.ts';
import type { Sink } from './sink.ts';

const CHUNK = 64 * 1024;

/**
 * NDJSON file, one CloudEvent per line. Durable = fdatasync'd. The file is its own checkpoint: on open
 * it cuts a torn last line (a crash mid-write) and reads the id of the last whole line, so after a
 * crash it never writes an event id twice.
 */
export class FileSink implements Sink {
  readonly name = 'file';
  readonly ownsCheckpoint = true;
  private readonly path: string;
  private fh?: FileHandle;

  constructor(path: string) {
    this.path = path;
  }

  async open(): Promise<Position | null> {
    this.fh = await open(this.path, 'a+');
    const size = (await stat(this.path)).size;
    if (size === 0) return null;
    const { lastLine, validEnd } = await readTail(this.fh, size);
    if (validEnd < size) {
      await this.fh.truncate(validEnd);
      await this.fh.datasync();
    }
    if (!lastLine) return null;
    let id: unknown;
    try {
      id = (JSON.parse(lastLine) as { id?: unknown }).id;
    } catch {
      throw new Error(
        `${this.path}: the last line is not a JSON event; refusing to append (move the file away)`,
      );
    }
    if (typeof id !== 'string') throw new Error(`${this.path}: the last line has no event id`);
    return parseEventId(id);
  }

  async write(batch: SinkBatch): Promise<void> {
    const fh = this.fh;
    if (!fh) throw new Error('file sink is not open');
    await appendDurably(fh, batch);
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    await fh?.close();
  }
}

/** The last complete line and where the complete part of the file ends (after its last newline). */
async function readTail(
  fh: FileHandle,
  size: number,
): Promise<{ lastLine: string | null; validEnd: number }> {
  let end = size;
  let tail = Buffer.alloc(0);
  let validEnd = -1;
  // Find the last newline: everything after it is a torn write.
  while (end > 0) {
    const start = Math.max(0, end - CHUNK);
    const chunk = Buffer.alloc(end - start);
    await fh.read(chunk, 0, chunk.length, start);
    tail = Buffer.concat([chunk, tail]);
    end = start;
    const nl = tail.lastIndexOf(0x0a);
    if (nl >= 0 && validEnd < 0) {
      validEnd = end + nl + 1;
      tail = tail.subarray(0, nl);
    }
    if (validEnd >= 0) {
      const prev = tail.lastIndexOf(0x0a);
      if (prev >= 0) return { lastLine: tail.subarray(prev + 1).toString('utf8'), validEnd };
      if (end === 0) return { lastLine: tail.length ? tail.toString('utf8') : null, validEnd };
    }
  }
  if (validEnd < 0) return { lastLine: null, validEnd: 0 };
  return { lastLine: tail.length ? tail.toString('utf8') : null, validEnd };
}
