import { BlockPool, EventBlock } from '../../sinks/event-block.ts';

/**
 * Block pooling: events are packed into pooled blocks (event-block.ts: why not an object per event).
 * A full block is sealed and given back to the pool once every sink holds its events durably; an
 * event bigger than a pooled block gets a block of its own.
 */
export class EventPacker {
  private readonly pool = new BlockPool();
  /** The block events are packed into; after pack(), the block holding the packed event. */
  current: EventBlock = this.pool.take();
  /** Full blocks, oldest first, until every sink holds their events durably. */
  private sealed: EventBlock[] = [];

  /** Packs one event; returns its index in `current`. */
  pack(
    json: string,
    commitLsn: bigint,
    seq: number,
    table: string,
    type: string,
    partitionKey: string,
    commitTime: string,
  ): number {
    let i = this.current.append(json, commitLsn, seq, table, type, partitionKey, commitTime);
    if (i >= 0) return i;
    // The next block comes from the pool, or is made to the size of an event bigger than a pooled block.
    this.seal(this.pool.take());
    i = this.current.append(json, commitLsn, seq, table, type, partitionKey, commitTime);
    if (i >= 0) return i;
    this.seal(EventBlock.for(json));
    return this.current.append(json, commitLsn, seq, table, type, partitionKey, commitTime);
  }

  private seal(next: EventBlock): void {
    this.sealed.push(this.current);
    this.current = next;
  }

  /** Gives back to the pool the sealed blocks whose events are all durable (ordinal ≤ `durable`). */
  release(durable: number): void {
    if (this.sealed.length === 0) return;
    let n = 0;
    while (n < this.sealed.length && this.sealed[n]!.lastOrdinal() <= durable)
      this.pool.give(this.sealed[n++]!);
    if (n > 0) this.sealed.splice(0, n);
  }
}
