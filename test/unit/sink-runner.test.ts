import { describe, expect, it } from '@jest/globals';
import pino from 'pino';
import { asEvents, type PackedBatch, type SinkBatch } from '../../src/sinks/batch.ts';
import { ConnectorError } from '../../src/errors.ts';
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

/** A sink that rejects, as a broker does, any write holding an event whose `n` is in `poison`. */
class PickySink implements Sink {
  readonly name = 'picky';
  readonly ownsCheckpoint = true;
  readonly written: number[] = [];
  readonly poison: Set<number>;
  failures = 0;
  constructor(poison: number[]) {
    this.poison = new Set(poison);
  }
  async open() {
    return null;
  }
  rejection(err: Error): string | undefined {
    return /MESSAGE_TOO_LARGE/.test(err.message) ? 'too large' : undefined;
  }
  topicOf(): string {
    return 'events';
  }
  async write(batch: SinkBatch): Promise<void> {
    const events = asEvents(batch);
    if (this.failures > 0) {
      this.failures--;
      throw new Error('broker gone');
    }
    if (events.some((e) => this.poison.has(e.ordinal))) throw new Error('[MESSAGE_TOO_LARGE] too big');
    this.written.push(...events.map((e) => e.ordinal));
  }
  async close() {}
}

describe('SinkRunner: dead letters', () => {
  it('splits a rejected batch until the rejected event is alone, dead-letters it, writes the rest', async () => {
    const sink = new PickySink([4, 9]);
    sink.failures = 2; // transient errors are still retried
    const durable: number[] = [];
    const letters: { id: string; reason: string; sink: string; topic: string; lsn: string }[] = [];
    const r = new SinkRunner(sink, {
      batchSize: 8,
      retryLimit: 5,
      maxBackoffMs: 1,
      logger: pino({ level: 'silent' }),
      onDurable: (_s, ordinal) => durable.push(ordinal),
      onFatal: (_s, err) => {
        throw err;
      },
      deadLetters: { send: async (l) => void letters.push(l) },
    });
    await r.open();
    const events = makeEvents(0, 12);
    for (const e of events) r.push(e);
    await r.drain();
    expect(sink.written).toEqual([0, 1, 2, 3, 5, 6, 7, 8, 10, 11]);
    expect(letters.map((l) => l.id)).toEqual([events[4]!.id, events[9]!.id]);
    expect(letters[0]).toMatchObject({
      reason: 'too large',
      sink: 'picky',
      topic: 'events',
      lsn: events[4]!.event.lsn,
    });
    expect(durable.at(-1)).toBe(11);
  });

  it('without a dead-letter route retries a rejection until the retry limit stops the sink', async () => {
    const sink = new PickySink([1]);
    let fatal: Error | undefined;
    const r = new SinkRunner(sink, {
      batchSize: 8,
      retryLimit: 3,
      maxBackoffMs: 1,
      logger: pino({ level: 'silent' }),
      onDurable: () => undefined,
      onFatal: (_s, err) => (fatal = err),
    });
    await r.open();
    for (const e of makeEvents(0, 3)) r.push(e);
    await r.drain();
    expect(fatal?.message).toMatch(/failed 3 times/);
    expect(sink.written).toEqual([0]); // the first push is written alone, before the rest queue
  });
});

describe('SinkRunner: events over the sink limit', () => {
  it('dead-letters an event over maxEventBytes without writing it (Pub/Sub: 10 MB), to a file route', async () => {
    const { mkdtempSync, readFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { FileDeadLetters, deadLetterRoute } = await import('../../src/sinks/dead-letter/index.ts');
    const path = join(mkdtempSync(join(tmpdir(), 'tagc-dl-')), 'dead.ndjson');
    const target = new FileDeadLetters(path);
    await target.open();
    let counted = 0;
    const route = deadLetterRoute(target, { logger: pino({ level: 'silent' }), count: () => counted++ });
    class LimitedSink extends PickySink {
      readonly maxEventBytes = 400;
    }
    const sink = new LimitedSink([]);
    const events = makeEvents(0, 6);
    const big = makeEvents(3, 1)[0]!;
    (big.event.data as { after: Record<string, unknown> }).after.pad = 'x'.repeat(1000);
    const { outboundEvent } = await import('../../src/sinks/sink.ts');
    events[3] = outboundEvent(big.event, 3, big.position, big.table);
    const r = new SinkRunner(sink, {
      batchSize: 8,
      retryLimit: 2,
      maxBackoffMs: 1,
      logger: pino({ level: 'silent' }),
      onDurable: () => undefined,
      onFatal: (_s, err) => {
        throw err;
      },
      deadLetters: route,
    });
    await r.open();
    for (const e of events) r.push(e);
    await r.drain();
    await target.close();
    expect(sink.written).toEqual([0, 1, 2, 4, 5]);
    const lines = readFileSync(path, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      sink: 'picky',
      topic: 'events',
      id: events[3]!.id,
      table: 'public.tasks',
    });
    expect(lines[0].reason).toMatch(/larger than picky's limit of 400 bytes/);
    expect(lines[0].event.id).toBe(events[3]!.id);
    expect(counted).toBe(1);
  });

  it('without a dead-letter route stops at once, naming the event, and never writes it', async () => {
    class LimitedSink extends PickySink {
      readonly maxEventBytes = 400;
    }
    const sink = new LimitedSink([]);
    const events = makeEvents(0, 3);
    const big = makeEvents(1, 1)[0]!;
    (big.event.data as { after: Record<string, unknown> }).after.pad = 'x'.repeat(1000);
    const { outboundEvent } = await import('../../src/sinks/sink.ts');
    events[1] = outboundEvent(big.event, 1, big.position, big.table);
    let fatal: Error | undefined;
    const r = new SinkRunner(sink, {
      batchSize: 8,
      retryLimit: 5,
      maxBackoffMs: 1,
      logger: pino({ level: 'silent' }),
      onDurable: () => undefined,
      onFatal: (_s, err) => (fatal = err),
    });
    await r.open();
    for (const e of events) r.push(e);
    await r.drain();
    expect(fatal).toBeInstanceOf(ConnectorError);
    expect(fatal!.message).toMatch(
      new RegExp(
        `^public\\.tasks: event ${events[1]!.id} \\(\\d+ bytes\\) is larger than picky's limit of 400 bytes`,
      ),
    );
    expect(fatal!.message).not.toContain('xxxx');
    expect(sink.written).not.toContain(1);
    expect(r.getStatus().state).toBe('failed');
  });
});
