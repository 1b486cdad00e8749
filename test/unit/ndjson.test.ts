import { describe, expect, it } from '@jest/globals';
import { asPacked, PackedBatch } from '../../src/sinks/batch.ts';
import { BlockPool, EventBlock } from '../../src/sinks/event-block.ts';
import { ndjson, ndjsonBytes } from '../../src/sinks/ndjson.ts';
import { EncodedEvent, outboundEvent, type OutboundEvent } from '../../src/sinks/sink.ts';
import { makeEvents } from '../support/events.ts';

const lines = (events: readonly OutboundEvent[]) => events.map((e) => e.json + '\n').join('');

/** Events packed into blocks of `perBlock` events, as the pipeline packs them. */
function packed(events: readonly OutboundEvent[], perBlock: number): PackedBatch {
  const batch = new PackedBatch();
  let block = new EventBlock(perBlock);
  for (const e of events) {
    let i = block.appendEvent(e);
    if (i < 0) {
      block = new EventBlock(perBlock);
      i = block.appendEvent(e);
    }
    batch.add(block, i, i + 1);
  }
  return batch;
}

describe('NDJSON bytes of a batch', () => {
  it('are the UTF-8 of the joined lines, for any text, packed or not', () => {
    const plain = makeEvents(0, 5);
    const wide = plain.map((e, i) =>
      outboundEvent({ ...e.event, subject: `ключ/${i}/キー/😀` }, e.ordinal, e.position, e.table),
    );
    for (const batch of [plain, wide, [...plain, ...wide], plain.slice(0, 1)]) {
      const text = lines(batch);
      expect(ndjsonBytes(batch).equals(Buffer.from(text, 'utf8'))).toBe(true);
      expect(ndjson(packed(batch, 3))).toBe(text);
    }
    expect(ndjsonBytes([]).length).toBe(0);
  });

  it('of a packed batch are the block slab itself when the batch is one run (no copy)', () => {
    const batch = packed(makeEvents(100, 10), 16);
    expect(batch.blocks).toHaveLength(1);
    const bytes = ndjsonBytes(batch);
    expect(bytes.buffer).toBe(batch.blocks[0]!.buf.buffer);
    expect(batch.chunks()).toHaveLength(1);
    expect(packed(makeEvents(100, 10), 4).chunks()).toHaveLength(3);
  });

  it('measure each event where it is packed: a wrong declared length cannot cut a line short', () => {
    const e = makeEvents(200, 1)[0]!;
    const wrong = new EncodedEvent(e.ordinal, e.position, e.json, e.table, e, e.bytes - 1);
    expect(ndjson([wrong])).toBe(e.json + '\n');
    expect(asPacked([wrong]).events()[0]!.bytes).toBe(e.bytes);
  });
});

describe('event blocks and packed batches', () => {
  it('keep every attribute of an event and give it back as an object', () => {
    const events = makeEvents(7, 5);
    const batch = packed(events, 2);
    const back = batch.events();
    expect(back.map((e) => [e.ordinal, e.id, e.type, e.table, e.partitionkey, e.time, e.json])).toEqual(
      events.map((e) => [e.ordinal, e.id, e.type, e.table, e.partitionkey, e.time, e.json]),
    );
    expect(back.map((e) => e.position)).toEqual(events.map((e) => e.position));
    expect(batch.lastOrdinal()).toBe(events[4]!.ordinal);
    expect(batch.firstPosition()).toEqual(events[0]!.position);
    expect(batch.lastPosition()).toEqual(events[4]!.position);
  });

  it('filter into runs, leaving out events in the middle', () => {
    const events = makeEvents(0, 8);
    const batch = packed(events, 8);
    const odd = batch.filter((b, i) => b.ordinals[i]! % 2 === 1);
    expect(odd.length).toBe(4);
    expect(odd.blocks).toHaveLength(4);
    expect(odd.events().map((e) => e.ordinal)).toEqual(
      events.filter((e) => e.ordinal % 2 === 1).map((e) => e.ordinal),
    );
    expect(batch.filter(() => true).blocks).toHaveLength(1);
    expect(batch.filter(() => false).length).toBe(0);
  });

  it('refuse an event that does not fit; a block for a huge event holds it', () => {
    const small = new EventBlock(4, 64);
    const e = makeEvents(0, 1)[0]!;
    expect(small.appendEvent(e)).toBe(-1);
    const big = EventBlock.for(e.json);
    expect(big.appendEvent(e)).toBe(0);
    expect(big.json(0)).toBe(e.json);
  });

  it('hand out objects that stay valid after their block went back to the pool and was reused', () => {
    const pool = new BlockPool(1);
    const block = pool.take();
    const [a, b] = makeEvents(0, 2);
    block.appendEvent(a!);
    const copy = block.event(0);
    pool.give(block);
    const again = pool.take();
    expect(again).toBe(block);
    expect(again.count).toBe(0);
    again.appendEvent(b!);
    expect(copy.json).toBe(a!.json);
    expect(copy.id).toBe(a!.id);
    expect(again.json(0)).toBe(b!.json);
  });
});
