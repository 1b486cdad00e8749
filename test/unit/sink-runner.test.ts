import { describe, expect, it } from '@jest/globals';
import pino from 'pino';
import { asEvents, type PackedBatch, type SinkBatch } from '../../src/sinks/batch.ts';
import { SinkRunner } from '../../src/sinks/runner.ts';
import type { Sink } from '../../src/sinks/sink.ts';
import { makeEvents } from '../support/events.ts';

/** A sink whose writes wait until the test releases them; it records what it was given. */
class GatedSink implements Sink {
  readonly name = 'gated';
  readonly ownsCheckpoint = true;
  readonly prepared: number[][] = [];
  readonly writes: { ordinals: number[]; prepared: unknown }[] = [];
  failNext = 0;
  private release: (() => void)[] = [];

  async open() {
    return null;
  }
  prepare(batch: PackedBatch): unknown {
    const events = batch.events();
    this.prepared.push(events.map((e) => e.ordinal));
    return { first: events[0]!.ordinal };
  }
  async write(batch: SinkBatch, prepared?: unknown): Promise<void> {
    this.writes.push({ ordinals: asEvents(batch).map((e) => e.ordinal), prepared });
    await new Promise<void>((r) => this.release.push(r));
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error('broker gone');
    }
  }
  async close() {}
  /** Lets the oldest pending write finish. */
  next(): void {
    this.release.shift()?.();
  }
  pending(): number {
    return this.release.length;
  }
}

const tick = () => new Promise((r) => setTimeout(r, 0));

function runner(sink: Sink, durable: number[]) {
  return new SinkRunner(sink, {
    batchSize: 3,
    retryLimit: 5,
    maxBackoffMs: 1,
    logger: pino({ level: 'silent' }),
    onDurable: (_s, ordinal) => durable.push(ordinal),
    onFatal: () => undefined,
  });
}

describe('SinkRunner: the next batch prepared during a write', () => {
  it('prepares a full batch queued behind a write, hands it over once, in stream order', async () => {
    const sink = new GatedSink();
    const durable: number[] = [];
    const r = runner(sink, durable);
    await r.open();
    const events = makeEvents(0, 8);
    r.push(events[0]!); // first write: one event
    await tick();
    for (const e of events.slice(1)) r.push(e); // 7 more while it is in progress
    expect(sink.prepared).toEqual([[1, 2, 3]]); // one full batch, once
    expect(r.queued()).toBe(7);
    sink.next();
    await tick();
    expect(sink.writes[1]).toEqual({ ordinals: [1, 2, 3], prepared: { first: 1 } });
    sink.next();
    await tick();
    sink.next();
    await tick();
    expect(sink.writes.map((w) => w.ordinals)).toEqual([[0], [1, 2, 3], [4, 5, 6], [7]]);
    sink.next();
    await r.drain();
    expect(durable).toEqual([0, 3, 6, 7]);
  });

  it('a retried batch is written again without its prepared form', async () => {
    const sink = new GatedSink();
    const r = runner(sink, []);
    await r.open();
    const events = makeEvents(0, 4);
    r.push(events[0]!);
    await tick();
    for (const e of events.slice(1)) r.push(e);
    sink.next();
    await tick();
    sink.failNext = 1;
    sink.next(); // the prepared batch fails once
    await new Promise((res) => setTimeout(res, 20));
    expect(sink.writes.slice(1).map((w) => w.prepared)).toEqual([{ first: 1 }, undefined]);
    sink.next();
    await r.drain();
    expect(sink.writes.map((w) => w.ordinals)).toEqual([[0], [1, 2, 3], [1, 2, 3]]);
  });
});
