import {
  createReadStream,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { comparePosition, formatLsn, parseEventId, parseLsn, type Position } from '../util/lsn.ts';
import { asPacked, type SinkBatch } from './batch.ts';
import { appendDurably } from './ndjson.ts';
import type { OutboundEvent, Sink } from './sink.ts';

/**
 * The retention behind `GET /v1/api/ws/Stream?fromLsn=`: a bounded, segmented NDJSON log of recent
 * events on local disk. It is a sink like the others (fsync'd, its tail is its checkpoint), so the
 * slot is never confirmed past what it holds: replay from any point it covers has no gap, also across
 * crashes. Old segments are dropped past `maxBytes`; `coveredFrom` records from where it is complete.
 */
export interface StreamLogOptions {
  dir: string;
  maxBytes: number;
  segmentBytes?: number;
  /** Where the log starts being complete when it is created (the slot's confirmed LSN then). */
  startLsn: bigint;
}

interface Segment {
  file: string;
  first: Position;
  bytes: number;
}

export type LiveListener = (batch: readonly OutboundEvent[]) => void;

const META = 'meta.json';

function segName(p: Position): string {
  return `${p.commitLsn.toString(16).padStart(16, '0')}-${p.seq.toString(16).padStart(8, '0')}.ndjson`;
}

function parseSegName(name: string): Position | null {
  const m = /^([0-9a-f]{16})-([0-9a-f]{8})\.ndjson$/.exec(name);
  return m ? { commitLsn: BigInt('0x' + m[1]), seq: parseInt(m[2]!, 16) } : null;
}

const ID_PREFIX = /"id":"([0-9A-F]+\/[0-9A-F]+\/\d+)"/;

export class StreamLog implements Sink {
  readonly name = 'stream-log';
  readonly ownsCheckpoint = true;
  private readonly o: Required<StreamLogOptions>;
  private segments: Segment[] = [];
  private fh?: FileHandle;
  private last: Position | null = null;
  /** Positions strictly above this are all in the log. */
  private coveredAbove: Position = { commitLsn: 0n, seq: -1 };
  private readonly listeners = new Set<LiveListener>();

  constructor(options: StreamLogOptions) {
    this.o = { segmentBytes: 16 * 1024 * 1024, ...options };
  }

  async open(): Promise<Position | null> {
    mkdirSync(this.o.dir, { recursive: true });
    const metaPath = join(this.o.dir, META);
    if (existsSync(metaPath)) {
      const meta = JSON.parse(readFileSync(metaPath, 'utf8')) as {
        coveredAboveLsn: string;
        coveredAboveSeq: number;
      };
      this.coveredAbove = { commitLsn: parseLsn(meta.coveredAboveLsn), seq: meta.coveredAboveSeq };
    } else {
      // Complete from the slot's position at creation: every later commit will pass through us.
      this.coveredAbove = { commitLsn: this.o.startLsn, seq: -1 };
      this.saveMeta();
    }
    this.segments = readdirSync(this.o.dir)
      .map((f) => ({ f, p: parseSegName(f) }))
      .filter((x): x is { f: string; p: Position } => x.p !== null)
      .sort((a, b) => comparePosition(a.p, b.p))
      .map(({ f, p }) => ({
        file: join(this.o.dir, f),
        first: p,
        bytes: statSync(join(this.o.dir, f)).size,
      }));
    const tail = this.segments[this.segments.length - 1];
    if (tail) {
      const { FileSink } = await import('./file.ts');
      // Reuse the file sink's torn-line repair and last-id read for the tail segment.
      const probe = new FileSink(tail.file);
      this.last = await probe.open();
      await probe.close();
      tail.bytes = statSync(tail.file).size;
      this.fh = await open(tail.file, 'a');
    }
    return this.last;
  }

  private saveMeta(): void {
    writeFileSync(
      join(this.o.dir, META),
      JSON.stringify({
        coveredAboveLsn: formatLsn(this.coveredAbove.commitLsn),
        coveredAboveSeq: this.coveredAbove.seq,
      }),
    );
  }

  async write(events: SinkBatch): Promise<void> {
    const batch = asPacked(events);
    if (batch.length === 0) return;
    let tail = this.segments[this.segments.length - 1];
    if (!tail || !this.fh || tail.bytes >= this.o.segmentBytes) {
      await this.fh?.close();
      const first = batch.firstPosition();
      tail = { file: join(this.o.dir, segName(first)), first, bytes: 0 };
      this.segments.push(tail);
      this.fh = await open(tail.file, 'a');
      this.evict();
    }
    tail.bytes += await appendDurably(this.fh, batch);
    this.last = batch.lastPosition();
    // Live clients get objects (copies: the blocks are reused); made only when somebody listens.
    if (this.listeners.size > 0) {
      const objects = batch.events();
      for (const l of this.listeners) l(objects);
    }
  }

  private evict(): void {
    let total = this.segments.reduce((s, x) => s + x.bytes, 0);
    while (this.segments.length > 2 && total > this.o.maxBytes) {
      const old = this.segments.shift()!;
      const next = this.segments[0]!;
      total -= old.bytes;
      rmSync(old.file, { force: true });
      // Everything below the next segment's first event may now be missing.
      this.coveredAbove = { commitLsn: next.first.commitLsn, seq: next.first.seq - 1 };
      this.saveMeta();
    }
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    await fh?.close();
  }

  /** Whether replay can start after `from` with no gap. */
  covers(from: Position): boolean {
    return comparePosition(from, this.coveredAbove) >= 0;
  }

  coverage(): { coveredAbove: Position; last: Position | null } {
    return { coveredAbove: this.coveredAbove, last: this.last };
  }

  subscribe(listener: LiveListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Lines (event JSON) with position > `after`, up to the durable end at call time, in order.
   * The caller subscribes to live events first and drops any at or below the last replayed one.
   */
  async *replay(after: Position): AsyncGenerator<{ position: Position; json: string }> {
    const end = this.last;
    if (!end || comparePosition(end, after) <= 0) return;
    const segs = this.segments.slice();
    let startIdx = 0;
    for (let i = 0; i < segs.length; i++) if (comparePosition(segs[i]!.first, after) <= 0) startIdx = i;
    for (let i = startIdx; i < segs.length; i++) {
      const rl = createInterface({
        input: createReadStream(segs[i]!.file, { encoding: 'utf8' }),
        crlfDelay: Infinity,
      });
      try {
        for await (const line of rl) {
          const m = ID_PREFIX.exec(line.slice(0, 200));
          if (!m) continue;
          const position = parseEventId(m[1]!);
          if (comparePosition(position, after) <= 0) continue;
          if (comparePosition(position, end) > 0) return;
          yield { position, json: line };
        }
      } catch (err) {
        // A segment evicted under us: the client gets a gap error rather than silence.
        if ((err as NodeJS.ErrnoException).code === 'ENOENT')
          throw new Error('retention moved past the resume point during replay');
        throw err;
      } finally {
        rl.close();
      }
    }
  }
}
