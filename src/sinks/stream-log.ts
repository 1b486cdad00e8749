import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { comparePosition, formatLsn, parseEventId, parseLsn, type Position } from '../util/lsn.ts';
import { asPacked, type SinkBatch } from './batch.ts';
import { nodeFs, readSmallFile, replaceFileDurably, type DurableFile, type DurableFs } from './durable-fs.ts';
import { appendDurably } from './ndjson.ts';
import { checkTail, positionOf } from './ndjson-tail.ts';
import { parseOrigin, sameOrigin, type CheckpointOrigin, type SinkReset } from './origin.ts';
import type { OutboundEvent, Sink } from './sink.ts';
import { errors } from '../errors.ts';

/**
 * The retention behind `GET /v1/api/ws/Stream?fromLsn=`: a bounded, segmented NDJSON log of recent
 * events on local disk. It is a sink like the others (fsync'd, its tail is its checkpoint), so the
 * slot is never confirmed past what it holds: replay from any point it covers has no gap, also across
 * crashes. Old segments are dropped past `maxBytes`; `coveredFrom` records from where it is complete.
 *
 * Crash safety (each step through the DurableFs seam, so tests crash it at every call):
 * - a new segment is created, gets its first batch fdatasync'd, then the directory is fsync'd, all
 *   before the write is acknowledged; on open, trailing segments with no complete event (a crash right
 *   after their creation) are removed, so the checkpoint is the last event of the log, never null;
 * - eviction happens before a new segment gets any byte: meta.json is replaced (temp file, fsync,
 *   rename, fsync of the directory) with the new coverage first, the old segments are deleted only
 *   then. A crash between leaves segments below the coverage, removed on open; a resume point in the
 *   evicted range is refused (410), never served with a gap;
 * - a failed append is cut back (appendDurably); a failed directory fsync cuts the batch back too, so
 *   the runner's retry writes it once.
 */
export interface StreamLogOptions {
  dir: string;
  maxBytes: number;
  segmentBytes?: number;
  /** Where the log starts being complete when it is created (the slot's confirmed LSN then). */
  startLsn: bigint;
  fs?: DurableFs;
}

interface Segment {
  file: string;
  first: Position;
  bytes: number;
}

interface Meta {
  coveredAboveLsn: string;
  coveredAboveSeq: number;
  origin?: CheckpointOrigin;
  /** The latest explicit resets (--reset-sink-checkpoints), newest last. */
  resets?: SinkReset[];
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

/** The position just below p: a segment starting at p covers everything above this. */
const justBelow = (p: Position): Position => ({ commitLsn: p.commitLsn, seq: p.seq - 1 });

/** Same system, database, slot and slot life (a new timeline alone continues the history). */
const sameHistory = (a: CheckpointOrigin | null, b: CheckpointOrigin) =>
  !!a &&
  a.systemId === b.systemId &&
  a.database === b.database &&
  a.slot === b.slot &&
  a.slotIncarnation === b.slotIncarnation;

const ID_PREFIX = /"id":"([0-9A-F]+\/[0-9A-F]+\/\d+)"/;

export class StreamLog implements Sink {
  readonly name = 'stream-log';
  readonly ownsCheckpoint = true;
  private readonly o: Required<StreamLogOptions>;
  private readonly fs: DurableFs;
  private segments: Segment[] = [];
  private fh?: DurableFile;
  /** The tail segment was created and the directory not fsync'd since. */
  private dirDirty = false;
  private last: Position | null = null;
  /** Positions strictly above this are all in the log. */
  private coveredAbove: Position = { commitLsn: 0n, seq: -1 };
  private origin: CheckpointOrigin | null = null;
  private resets: SinkReset[] = [];
  private readonly listeners = new Set<LiveListener>();

  constructor(options: StreamLogOptions) {
    this.o = { segmentBytes: 16 * 1024 * 1024, fs: nodeFs, ...options };
    this.fs = this.o.fs;
  }

  private get dir(): string {
    return this.o.dir;
  }

  async open(): Promise<Position | null> {
    const { fs, dir } = this;
    await fs.mkdir(dir);
    const metaText = await readSmallFile(fs, join(dir, META));
    if (metaText !== null) {
      let meta: Meta;
      try {
        meta = JSON.parse(metaText) as Meta;
        this.coveredAbove = { commitLsn: parseLsn(meta.coveredAboveLsn), seq: meta.coveredAboveSeq };
      } catch {
        // Replaced atomically, so never torn by us: somebody else wrote it.
        throw errors.sinkFileDamaged(join(dir, META), 0, 'a retention meta file that does not parse');
      }
      this.origin = parseOrigin(meta.origin);
      this.resets = meta.resets ?? [];
    } else {
      // Complete from the slot's position at creation: every later commit will pass through us.
      this.coveredAbove = { commitLsn: this.o.startLsn, seq: -1 };
      await this.saveMeta();
    }
    const found: Segment[] = [];
    for (const f of await fs.readdir(dir)) {
      const first = parseSegName(f);
      if (!first) continue;
      const file = join(dir, f);
      const h = await fs.open(file, 'r');
      const { size } = await h.stat();
      await h.close();
      found.push({ file, first, bytes: size });
    }
    found.sort((a, b) => comparePosition(a.first, b.first));
    let removed = false;
    // Leftovers of an eviction a crash cut short (meta.json already says they are gone).
    while (found.length > 1 && comparePosition(justBelow(found[1]!.first), this.coveredAbove) <= 0) {
      await fs.unlink(found.shift()!.file);
      removed = true;
    }
    // The tail: a torn write is cut; a segment without a complete event (created just before a
    // crash) is removed, so the checkpoint is the log's last event.
    this.last = null;
    while (found.length > 0) {
      const tail = found[found.length - 1]!;
      const fh = await fs.open(tail.file, 'a+');
      const { last, validEnd } = await checkTail(fh, tail.bytes, tail.file);
      if (validEnd < tail.bytes) {
        await fh.truncate(validEnd);
        await fh.datasync();
        tail.bytes = validEnd;
      }
      if (last) {
        this.last = positionOf(last, tail.file);
        this.fh = fh;
        break;
      }
      await fh.close();
      await fs.unlink(tail.file);
      found.pop();
      removed = true;
    }
    if (removed) await fs.fsyncDir(dir);
    this.segments = found;
    return this.last;
  }

  storedOrigin(): CheckpointOrigin | null {
    return this.origin;
  }

  /**
   * Records the origin in meta.json. A reset, or another system/slot life with nothing in the log,
   * drops every segment first and starts the coverage anew at the slot's position: positions of the
   * old history mean nothing here, so a client resuming from one gets 410, not another history's events.
   */
  async bindOrigin(origin: CheckpointOrigin, reset?: SinkReset): Promise<void> {
    if (reset || (this.origin && !sameHistory(this.origin, origin))) {
      await this.fh?.close();
      this.fh = undefined;
      for (const s of this.segments) await this.fs.unlink(s.file);
      if (this.segments.length) await this.fs.fsyncDir(this.dir);
      this.segments = [];
      this.last = null;
      this.coveredAbove = { commitLsn: this.o.startLsn, seq: -1 };
      if (reset) this.resets = [...this.resets, reset].slice(-10);
    } else if (sameOrigin(this.origin, origin)) return;
    this.origin = origin;
    await this.saveMeta();
  }

  private async saveMeta(covered: Position = this.coveredAbove): Promise<void> {
    const meta: Meta = {
      coveredAboveLsn: formatLsn(covered.commitLsn),
      coveredAboveSeq: covered.seq,
      ...(this.origin ? { origin: this.origin } : {}),
      ...(this.resets.length ? { resets: this.resets } : {}),
    };
    await replaceFileDurably(this.fs, join(this.dir, META), JSON.stringify(meta) + '\n');
  }

  async write(events: SinkBatch): Promise<void> {
    const batch = asPacked(events);
    if (batch.length === 0) return;
    let tail = this.segments[this.segments.length - 1];
    if (!tail || !this.fh || tail.bytes >= this.o.segmentBytes) {
      // Old segments go before the new one gets a byte: a failure here leaves the batch unwritten.
      await this.evict();
      await this.fh?.close();
      this.fh = undefined;
      const first = batch.firstPosition();
      const file = join(this.dir, segName(first));
      this.fh = await this.fs.open(file, 'a+');
      tail = { file, first, bytes: 0 };
      this.segments.push(tail);
      this.dirDirty = true;
    }
    const before = tail.bytes;
    const n = await appendDurably(this.fh, batch, before, tail.file);
    if (this.dirDirty) {
      try {
        await this.fs.fsyncDir(this.dir);
      } catch (err) {
        // Not acknowledged: the retry writes the batch again, so it must not stay here.
        try {
          await this.fh.truncate(before);
        } catch (truncateError) {
          throw errors.sinkTruncateFailed(tail.file, before, err as Error, truncateError as Error);
        }
        throw err;
      }
      this.dirDirty = false;
    }
    tail.bytes = before + n;
    this.last = batch.lastPosition();
    // Live clients get objects (copies: the blocks are reused); made only when somebody listens.
    if (this.listeners.size > 0) {
      const objects = batch.events();
      for (const l of this.listeners) l(objects);
    }
  }

  /** Drops the oldest segments past maxBytes (keeping the newest): meta.json first, then the files. */
  private async evict(): Promise<void> {
    let total = this.segments.reduce((s, x) => s + x.bytes, 0);
    let n = 0;
    while (this.segments.length - n > 1 && total > this.o.maxBytes) total -= this.segments[n++]!.bytes;
    if (n === 0) return;
    // Everything below the first kept segment's first event may now be missing.
    const covered = justBelow(this.segments[n]!.first);
    await this.saveMeta(covered);
    this.coveredAbove = covered;
    for (let i = 0; i < n; i++) {
      try {
        await this.fs.unlink(this.segments[i]!.file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    this.segments.splice(0, n);
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
