import type { Logger } from '../log.ts';
import type { Position } from '../util/lsn.ts';
import type { SinkBatch } from './batch.ts';
import { nodeFs, readSmallFile, replaceFileDurably, type DurableFile, type DurableFs } from './durable-fs.ts';
import { appendBytesDurably, appendDurably } from './ndjson.ts';
import { checkTail, positionOf } from './ndjson-tail.ts';
import {
  parseOrigin,
  RESET_MARKER_TYPE,
  resetMarkerLine,
  sameOrigin,
  type CheckpointOrigin,
  type SinkReset,
} from './origin.ts';
import type { Sink } from './sink.ts';

export interface FileSinkOptions {
  path: string;
  fs?: DurableFs;
  logger?: Pick<Logger, 'warn'>;
}

/**
 * NDJSON file, one CloudEvent per line. Durable = fdatasync'd. The file is its own checkpoint: on open
 * it checks that it ends on complete events (ndjson-tail.ts), cuts a torn last write and reads the id
 * of the last whole line, so after a crash it never writes an event id twice. A failed write is cut
 * back before the retry (appendDurably).
 *
 * Where the checkpoint came from (origin.ts) is kept beside the file, in `<path>.origin.json`, replaced
 * atomically; a reset (--reset-sink-checkpoints) appends a marker line first, so the file itself says
 * where its history restarts, and a marker as the last line is the authority on the origin (a crash
 * between the marker and the side file loses nothing).
 */
export class FileSink implements Sink {
  readonly name = 'file';
  readonly ownsCheckpoint = true;
  private readonly path: string;
  private readonly fs: DurableFs;
  private readonly logger?: Pick<Logger, 'warn'>;
  private fh?: DurableFile;
  private size = 0;
  private origin: CheckpointOrigin | null = null;
  private originSaved = false;

  constructor(options: FileSinkOptions | string) {
    const o = typeof options === 'string' ? { path: options } : options;
    this.path = o.path;
    this.fs = o.fs ?? nodeFs;
    this.logger = o.logger;
  }

  get originPath(): string {
    return `${this.path}.origin.json`;
  }

  async open(): Promise<Position | null> {
    const fh = await this.fs.open(this.path, 'a+');
    this.fh = fh;
    this.size = (await fh.stat()).size;
    const { last, validEnd } = await checkTail(fh, this.size, this.path);
    if (validEnd < this.size) {
      this.logger?.warn(
        { path: this.path, offset: validEnd, bytes: this.size - validEnd },
        'file sink: cutting a torn write at the end of the file (a crash before its fsync)',
      );
      await fh.truncate(validEnd);
      await fh.datasync();
      this.size = validEnd;
    }
    const side = await readSmallFile(this.fs, this.originPath);
    this.origin = side ? parseOrigin((JSON.parse(side) as { origin?: unknown }).origin) : null;
    this.originSaved = this.origin !== null;
    if (!last) return null;
    if (last.type === RESET_MARKER_TYPE) {
      // The history restarted here: the marker says for which origin.
      this.origin = parseOrigin((last.value.data as { origin?: unknown } | undefined)?.origin);
      this.originSaved = false;
      return null;
    }
    return positionOf(last, this.path);
  }

  storedOrigin(): CheckpointOrigin | null {
    return this.origin;
  }

  async bindOrigin(origin: CheckpointOrigin, reset?: SinkReset): Promise<void> {
    const fh = this.fh;
    if (!fh) throw new Error('file sink is not open');
    if (reset) {
      const line = Buffer.from(resetMarkerLine(origin, reset));
      this.size += await appendBytesDurably(fh, [line], line.length, this.size, this.path);
      this.originSaved = false;
    }
    if (!this.originSaved || !sameOrigin(this.origin, origin)) {
      await replaceFileDurably(this.fs, this.originPath, JSON.stringify({ origin }) + '\n');
    }
    this.origin = origin;
    this.originSaved = true;
  }

  async write(batch: SinkBatch): Promise<void> {
    const fh = this.fh;
    if (!fh) throw new Error('file sink is not open');
    this.size += await appendDurably(fh, batch, this.size, this.path);
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    await fh?.close();
  }
}
