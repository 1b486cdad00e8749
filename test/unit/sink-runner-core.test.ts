import { describe, expect, it } from '@jest/globals';
import pino from 'pino';
import { asEvents, type SinkBatch } from '../../src/sinks/batch.ts';
import { SinkFailedError, SinkRunner, type CheckpointStore } from '../../src/sinks/runner.ts';
import type { Sink } from '../../src/sinks/sink.ts';
import type { Position } from '../../src/util/lsn.ts';
import { makeEvents } from '../support/events.ts';

/** A sink that records the ids it was given; `failures` writes fail first (with `error`). */
class ScriptedSink implements Sink {
  readonly name = 'scripted';
  readonly ownsCheckpoint: boolean;
  readonly written: string[] = [];
  attempts = 0;
  failures: number;
  private readonly checkpoint: Position | null;
  constructor(o: { ownsCheckpoint: boolean; checkpoint?: Position | null; failures?: number }) {
    this.ownsCheckpoint = o.ownsCheckpoint;
    this.checkpoint = o.checkpoint ?? null;
    this.failures = o.failures ?? 0;
  }
  async open() {
    return this.ownsCheckpoint ? this.checkpoint : null;
  }
  async write(batch: SinkBatch): Promise<void> {
    this.attempts++;
    if (this.failures > 0) {
      this.failures--;
      throw new Error('broker unreachable');
    }
    for (const e of asEvents(batch)) this.written.push(e.id);
  }
  async close() {}
}

class MemoryStore implements CheckpointStore {
  saved: Position[] = [];
  private readonly initial: Position | null;
  constructor(initial: Position | null) {
    this.initial = initial;
  }
  async load() {
    return this.initial;
  }
  async save(_sink: string, p: Position) {
    this.saved.push(p);
  }
}

function runnerFor(sink: Sink, o: { retryLimit?: number; store?: CheckpointStore } = {}) {
  const seen = { durable: [] as number[], fatal: [] as Error[], retries: 0 };
  const runner = new SinkRunner(sink, {
    batchSize: 4,
    retryLimit: o.retryLimit ?? 5,
    maxBackoffMs: 1,
    logger: pino({ level: 'silent' }),
    onDurable: (_s, ordinal) => seen.durable.push(ordinal),
    onRetry: () => seen.retries++,
    onFatal: (_s, err) => seen.fatal.push(err),
    ...(o.store ? { store: o.store } : {}),
  });
  return { runner, seen };
}

// makeEvents: event i is in transaction i / 3 (commit LSN 0x1000000 + 0x100 * tx), seq i % 3.
const events = makeEvents(0, 12);
const ids = events.map((e) => e.id);

describe('SinkRunner: dedupe, retries, the retry limit', () => {
  it('skips what the sink already holds (its own checkpoint), and still reports those events durable', async () => {
    // The checkpoint is event 4 (transaction 1, seq 1): a resent transaction 1 is cut in half.
    const sink = new ScriptedSink({ ownsCheckpoint: true, checkpoint: events[4]!.position });
    const { runner, seen } = runnerFor(sink);
    expect(await runner.open()).toEqual(events[4]!.position);
    for (const e of events) runner.push(e);
    await runner.drain();
    expect(sink.written).toEqual(ids.slice(5));
    expect(seen.durable[seen.durable.length - 1]).toBe(11);
    expect(runner.getStatus()).toMatchObject({ skipped: 5, delivered: 7, state: 'ok' });
  });

  it('a sink without its own checkpoint: dedupe against the store, and each batch saved there', async () => {
    const store = new MemoryStore(events[2]!.position);
    const sink = new ScriptedSink({ ownsCheckpoint: false });
    const { runner } = runnerFor(sink, { store });
    await runner.open();
    for (const e of events) runner.push(e);
    await runner.drain();
    expect(sink.written).toEqual(ids.slice(3));
    expect(store.saved[store.saved.length - 1]).toEqual(events[11]!.position);
    // Positions saved only move forward.
    for (let i = 1; i < store.saved.length; i++)
      expect(store.saved[i]!.commitLsn >= store.saved[i - 1]!.commitLsn).toBe(true);
  });

  it('retries a failing write and delivers once it succeeds: nothing lost, nothing doubled', async () => {
    const sink = new ScriptedSink({ ownsCheckpoint: true, failures: 3 });
    const { runner, seen } = runnerFor(sink, { retryLimit: 5 });
    await runner.open();
    for (const e of events) runner.push(e);
    await runner.drain();
    expect(sink.written).toEqual(ids);
    expect(seen.retries).toBe(3);
    expect(seen.fatal).toEqual([]);
    expect(runner.getStatus()).toMatchObject({ state: 'ok', retries: 3 });
  });

  it('gives up at the retry limit: onFatal once, nothing reported durable, the sink marked failed', async () => {
    const sink = new ScriptedSink({ ownsCheckpoint: true, failures: Infinity });
    const { runner, seen } = runnerFor(sink, { retryLimit: 3 });
    await runner.open();
    for (const e of events) runner.push(e);
    await runner.drain();
    expect(sink.attempts).toBe(3);
    expect(seen.fatal).toHaveLength(1);
    expect(seen.fatal[0]).toBeInstanceOf(SinkFailedError);
    expect(seen.fatal[0]!.message).toMatch(/broker unreachable/);
    expect(seen.durable).toEqual([]);
    expect(runner.getStatus().state).toBe('failed');
    // Nothing after the failure is written, even if more arrives.
    runner.push(makeEvents(12, 1)[0]!);
    await runner.drain();
    expect(sink.attempts).toBe(3);
    expect(seen.fatal).toHaveLength(1);
  });
});
