import type { Position } from '../util/lsn.ts';
import { packEvent, type EventBlock } from './event-block.ts';
import type { OutboundEvent } from './sink.ts';

/**
 * A batch for a sink: runs of events in blocks (event-block.ts), in stream order. Sinks that write
 * bytes take the runs as they lie (`chunks()` is the batch's NDJSON, not a copy); the others ask for
 * objects (`events()`, copies).
 */
export class PackedBatch {
  readonly blocks: EventBlock[] = [];
  /** Run r is events froms[r] (inclusive) to tos[r] (exclusive) of blocks[r]. */
  readonly froms: number[] = [];
  readonly tos: number[] = [];
  length = 0;

  /** Adds events from..to of a block after the batch's last (joined to the last run when adjacent). */
  add(block: EventBlock, from: number, to: number): void {
    if (to <= from) return;
    const r = this.blocks.length - 1;
    if (r >= 0 && this.blocks[r] === block && this.tos[r] === from) this.tos[r] = to;
    else {
      this.blocks.push(block);
      this.froms.push(from);
      this.tos.push(to);
    }
    this.length += to - from;
  }

  /** The events for which `keep` holds, in order (runs split where events are left out). */
  filter(keep: (block: EventBlock, i: number) => boolean): PackedBatch {
    const out = new PackedBatch();
    for (let r = 0; r < this.blocks.length; r++) {
      const b = this.blocks[r]!;
      const to = this.tos[r]!;
      let runFrom = -1;
      for (let i = this.froms[r]!; i < to; i++) {
        if (keep(b, i)) {
          if (runFrom < 0) runFrom = i;
        } else if (runFrom >= 0) {
          out.add(b, runFrom, i);
          runFrom = -1;
        }
      }
      if (runFrom >= 0) out.add(b, runFrom, to);
    }
    return out;
  }

  /** The events as objects (copies: see EventBlock.event), in order. */
  events(): OutboundEvent[] {
    const out = new Array<OutboundEvent>(this.length);
    let k = 0;
    for (let r = 0; r < this.blocks.length; r++)
      for (let i = this.froms[r]!; i < this.tos[r]!; i++) out[k++] = this.blocks[r]!.event(i);
    return out;
  }

  /** The batch's NDJSON (each event's JSON and a newline), as views of the block slabs. */
  chunks(): Buffer[] {
    const out: Buffer[] = [];
    for (let r = 0; r < this.blocks.length; r++)
      out.push(this.blocks[r]!.buf.subarray(this.runStart(r), this.runEnd(r)));
    return out;
  }

  /** Bytes of the batch's NDJSON. */
  ndjsonLength(): number {
    let n = 0;
    for (let r = 0; r < this.blocks.length; r++) n += this.runEnd(r) - this.runStart(r);
    return n;
  }

  /** Where run r's NDJSON starts in its block's slab. */
  private runStart(r: number): number {
    return this.blocks[r]!.start(this.froms[r]!);
  }

  /** Where run r's NDJSON ends (after the last event's newline). */
  private runEnd(r: number): number {
    return this.blocks[r]!.ends[this.tos[r]! - 1]! + 1;
  }

  firstPosition(): Position {
    return this.blocks[0]!.position(this.froms[0]!);
  }

  lastPosition(): Position {
    const r = this.blocks.length - 1;
    return this.blocks[r]!.position(this.tos[r]! - 1);
  }

  lastOrdinal(): number {
    const r = this.blocks.length - 1;
    return this.blocks[r]!.ordinals[this.tos[r]! - 1]!;
  }
}

/** What a sink's write takes: a packed batch (from the runner) or event objects (other producers). */
export type SinkBatch = readonly OutboundEvent[] | PackedBatch;

/** The batch packed (event objects are copied into a block of their own). */
export function asPacked(batch: SinkBatch): PackedBatch {
  if (batch instanceof PackedBatch) return batch;
  const out = new PackedBatch();
  let block: EventBlock | undefined;
  for (const e of batch) {
    let i: number;
    [block, i] = packEvent(block, e);
    out.add(block, i, i + 1); // joined into one run per block
  }
  return out;
}

/** The batch as event objects. */
export function asEvents(batch: SinkBatch): readonly OutboundEvent[] {
  return batch instanceof PackedBatch ? batch.events() : batch;
}
