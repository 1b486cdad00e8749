import { formatLsn, type Position } from '../util/lsn.ts';
import { EncodedEvent, type OutboundEvent } from './sink.ts';

/** Events per block and the bytes of its slab (a bigger event gets a slab of its own size). */
export const BLOCK_EVENTS = 2048;
export const BLOCK_BYTES = 1 << 20;

/**
 * Events on their way to the sinks, packed: their JSON as UTF-8 in one off-heap slab, each followed by
 * a newline (so a run of events is its NDJSON, written as it lies), and their attributes in typed
 * arrays and arrays of shared strings.
 *
 * Why not an object per event: an event waits for its batch and that batch's write (an fdatasync, a
 * Kafka transaction) for longer than V8's young generation lasts at catch-up rates, so every waiting
 * event was copied by a scavenge and promoted, and the old generation then had to mark and sweep it:
 * the file sink spent a quarter of its CPU in the GC that way. A block is a handful of objects for
 * 2,048 events, and its slab is not on the JS heap at all.
 */
export class EventBlock {
  readonly buf: Buffer;
  readonly capacity: number;
  /** Events appended so far. */
  count = 0;
  private used = 0;
  /** End (exclusive) of event i's JSON; `buf[ends[i]]` is its newline. */
  readonly ends: Uint32Array;
  readonly ordinals: Float64Array;
  readonly seqs: Float64Array;
  readonly commitLsns: bigint[];
  readonly tables: string[];
  readonly types: string[];
  readonly keys: string[];
  readonly times: string[];
  private lastLsn = -1n;
  private lastLsnText = '';

  constructor(capacity = BLOCK_EVENTS, bytes = BLOCK_BYTES) {
    this.capacity = capacity;
    // Not from Buffer's shared pool: the slab lives as long as its events, not as the pool's page.
    this.buf = Buffer.allocUnsafeSlow(bytes);
    this.ends = new Uint32Array(capacity);
    this.ordinals = new Float64Array(capacity);
    this.seqs = new Float64Array(capacity);
    this.commitLsns = new Array<bigint>(capacity);
    this.tables = new Array<string>(capacity);
    this.types = new Array<string>(capacity);
    this.keys = new Array<string>(capacity);
    this.times = new Array<string>(capacity);
  }

  /** A block that holds `json` whatever its size. */
  static for(json: string): EventBlock {
    return new EventBlock(BLOCK_EVENTS, Math.max(BLOCK_BYTES, Buffer.byteLength(json) + 1));
  }

  /**
   * Appends an event (its ordinal is set apart, once its byte length has been counted); returns its
   * index, or -1 when the block is full.
   */
  append(
    json: string,
    commitLsn: bigint,
    seq: number,
    table: string,
    type: string,
    key: string,
    time: string,
  ): number {
    const i = this.count;
    if (i === this.capacity) return -1;
    const room = this.buf.length - this.used - 1;
    // Exact length only when the 3-bytes-per-unit bound doesn't fit (it walks the string).
    if (json.length * 3 > room && Buffer.byteLength(json) > room) return -1;
    const end = this.used + this.buf.write(json, this.used);
    this.buf[end] = 10;
    this.used = end + 1;
    this.ends[i] = end;
    this.seqs[i] = seq;
    this.commitLsns[i] = commitLsn;
    this.tables[i] = table;
    this.types[i] = type;
    this.keys[i] = key;
    this.times[i] = time;
    this.count = i + 1;
    return i;
  }

  /** Appends an event object (producers other than the pipeline, tests). */
  appendEvent(e: OutboundEvent): number {
    const p = e.position;
    const i = this.append(e.json, p.commitLsn, p.seq, e.table, e.type, e.partitionkey, e.time);
    if (i >= 0) this.ordinals[i] = e.ordinal;
    return i;
  }

  start(i: number): number {
    return i === 0 ? 0 : this.ends[i - 1]! + 1;
  }

  byteLength(i: number): number {
    return this.ends[i]! - this.start(i);
  }

  json(i: number): string {
    return this.buf.toString('utf8', this.start(i), this.ends[i]);
  }

  position(i: number): Position {
    return { commitLsn: this.commitLsns[i]!, seq: this.seqs[i]! };
  }

  /** Whether event i comes after `p` in the stream. */
  after(i: number, p: Position): boolean {
    const lsn = this.commitLsns[i]!;
    return lsn > p.commitLsn || (lsn === p.commitLsn && this.seqs[i]! > p.seq);
  }

  id(i: number): string {
    const lsn = this.commitLsns[i]!;
    if (lsn !== this.lastLsn) {
      this.lastLsn = lsn;
      this.lastLsnText = formatLsn(lsn);
    }
    return `${this.lastLsnText}/${this.seqs[i]}`;
  }

  /**
   * Event i as an object of its own (for the paths that want one, never the packed ones). A copy, not
   * a view: the block goes back to its pool once its events are durable, and a live Stream client may
   * hold the object longer than that.
   */
  event(i: number): OutboundEvent {
    const meta = { id: this.id(i), type: this.types[i]!, partitionkey: this.keys[i]!, time: this.times[i]! };
    return new EncodedEvent(
      this.ordinals[i]!,
      this.position(i),
      this.json(i),
      this.tables[i]!,
      meta,
      this.byteLength(i),
    );
  }

  lastOrdinal(): number {
    return this.count === 0 ? -1 : this.ordinals[this.count - 1]!;
  }

  /** Empties the block for reuse (its pool does, once nothing reads the events any more). */
  reset(): void {
    this.count = 0;
    this.used = 0;
    this.lastLsn = -1n;
  }
}

/**
 * Appends an event object to `block`, or to a new block when `block` is full or absent (producers other
 * than the pipeline, which packs its events itself); returns the block it went to and its index there.
 */
export function packEvent(block: EventBlock | undefined, e: OutboundEvent): [EventBlock, number] {
  const i = block ? block.appendEvent(e) : -1;
  if (i >= 0) return [block!, i];
  const fresh = EventBlock.for(e.json);
  return [fresh, fresh.appendEvent(e)];
}

/**
 * Spare blocks. The pipeline gives a block back once every sink holds all its events durably: a fresh
 * megabyte slab per 1,400 events was external memory for V8, which ran a full mark-compact every few
 * dozen of them and let the resident set grow by as much between two.
 */
export class BlockPool {
  private readonly free: EventBlock[] = [];
  private readonly keep: number;

  constructor(keep = 16) {
    this.keep = keep;
  }

  take(): EventBlock {
    return this.free.pop() ?? new EventBlock();
  }

  give(block: EventBlock): void {
    // only standard blocks: one sized for a huge event goes to the GC
    if (block.buf.length !== BLOCK_BYTES || block.capacity !== BLOCK_EVENTS) return;
    if (this.free.length >= this.keep) return;
    block.reset();
    this.free.push(block);
  }
}
