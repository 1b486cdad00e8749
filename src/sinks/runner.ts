import { ConnectorError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { formatPosition, type Position } from '../util/lsn.ts';
import { PackedBatch } from './batch.ts';
import { packEvent, type EventBlock } from './event-block.ts';
import type { CheckpointOrigin, SinkReset, StoredCheckpoint } from './origin.ts';
import type { OutboundEvent, Sink, SinkStatus } from './sink.ts';
import type { DeadLetterRoute } from './dead-letter/index.ts';

/** Where a sink that doesn't keep its own checkpoint keeps it (the state store). */
export interface CheckpointStore {
  load(sink: string): Promise<Position | null>;
  save(sink: string, position: Position): Promise<void>;
  /** The checkpoint with the origin recorded beside it (stores that record one). */
  loadStored?(sink: string): Promise<StoredCheckpoint | null>;
  /** Forgets a sink's checkpoint and records the reset (--reset-sink-checkpoints). */
  reset?(sink: string, reset: SinkReset): Promise<void>;
}

/**
 * The check of a checkpoint against the server the daemon streams from (checkpoint-identity.ts):
 * `judge` throws when the checkpoint cannot be trusted, or returns the reset to record when told to
 * reset it (--reset-sink-checkpoints); undefined keeps it.
 */
export interface CheckpointIdentity {
  origin: CheckpointOrigin;
  judge(sink: string, stored: StoredCheckpoint | null): SinkReset | undefined;
}

export interface SinkRunnerOptions {
  batchSize: number;
  retryLimit: number;
  logger: Logger;
  /** Called in order with the highest ordinal durable in this sink. */
  onDurable: (sink: string, ordinal: number) => void;
  /** Called for each failed write that will be retried (metrics). */
  onRetry?: (sink: string) => void;
  /** Called when the sink's state changes (metrics). */
  onState?: (sink: string, state: SinkStatus['state']) => void;
  /** Called once when the sink gave up (retry limit): the daemon stops. */
  onFatal: (sink: string, err: Error) => void;
  store?: CheckpointStore;
  /** Backoff cap in ms. */
  maxBackoffMs?: number;
  /** Observes each durable batch (metrics). */
  onBatch?: (sink: string, batch: PackedBatch, ms: number) => void;
  /**
   * Where events the sink rejects permanently go (Sink.rejection, Sink.maxEventBytes); without it such
   * a rejection is retried like any error until the retry limit stops the daemon.
   */
  deadLetters?: DeadLetterRoute;
  /** Checks the checkpoint's origin on open and tells the sink what to record from then on. */
  identity?: CheckpointIdentity;
}

export class SinkFailedError extends Error {
  readonly code = 'SINK_FAILED';
  constructor(sink: string, attempts: number, cause: Error) {
    super(`sink ${sink} failed ${attempts} times in a row, giving up: ${cause.message}`);
    this.name = 'SinkFailedError';
  }
}

/**
 * Drives one sink: its own queue (bounded by the pipeline's in-flight limit), batching, retries with
 * capped exponential backoff, the dedupe (events at or below the sink's checkpoint are skipped: that
 * is how redelivered transactions are not written twice), and checkpoint persistence.
 */
export class SinkRunner {
  readonly sink: Sink;
  private readonly opts: SinkRunnerOptions;
  /** Queued runs of events: run r is events froms[r]..tos[r] of blocks[r]; runs before `head` are taken. */
  private blocks: EventBlock[] = [];
  private froms: number[] = [];
  private tos: number[] = [];
  private head = 0;
  private queuedEvents = 0;
  /** Where events pushed as objects are packed. */
  private own?: EventBlock;
  private running = false;
  private checkpoint: Position | null = null;
  private status: SinkStatus = { state: 'starting', checkpoint: null, delivered: 0, skipped: 0, retries: 0 };
  private drainWaiters: (() => void)[] = [];
  private stopped = false;
  private wake?: () => void;
  /** The next batch, taken and encoded by the sink while the current write is in progress. */
  private next?: { taken: PackedBatch; batch: PackedBatch; prepared: unknown };
  private writing = false;

  constructor(sink: Sink, opts: SinkRunnerOptions) {
    this.sink = sink;
    this.opts = opts;
  }

  get name(): string {
    return this.sink.name;
  }

  async open(): Promise<Position | null> {
    const own = await this.sink.open();
    const { store, identity } = this.opts;
    let stored: StoredCheckpoint | null;
    if (this.sink.ownsCheckpoint)
      stored =
        own || this.sink.storedOrigin ? { position: own, origin: this.sink.storedOrigin?.() ?? null } : null;
    else if (store?.loadStored) stored = await store.loadStored(this.sink.name);
    else {
      const position = (await store?.load(this.sink.name)) ?? null;
      stored = position ? { position, origin: null } : null;
    }
    if (identity) {
      const reset = identity.judge(this.name, stored);
      if (reset) {
        if (!this.sink.ownsCheckpoint) await store?.reset?.(this.sink.name, reset);
        stored = null;
      }
      await this.sink.bindOrigin?.(identity.origin, reset);
    }
    this.checkpoint = stored?.position ?? null;
    this.status = { ...this.status, state: 'ok', checkpoint: this.checkpoint };
    this.opts.onState?.(this.name, 'ok');
    this.opts.logger.info(
      { sink: this.name, checkpoint: this.checkpoint ? formatPosition(this.checkpoint) : null },
      'sink open',
    );
    return this.checkpoint;
  }

  /** Queues an event object (packed into a block of the runner's own). */
  push(event: OutboundEvent): void {
    const [block, i] = packEvent(this.own, event);
    this.own = block;
    this.pushPacked(block, i);
  }

  /** Queues event i of a block (events come in stream order). */
  pushPacked(block: EventBlock, i: number): void {
    const r = this.blocks.length - 1;
    if (r >= this.head && this.blocks[r] === block && this.tos[r] === i) this.tos[r] = i + 1;
    else {
      this.blocks.push(block);
      this.froms.push(i);
      this.tos.push(i + 1);
    }
    this.queuedEvents++;
    if (!this.running) void this.loop();
    else if (this.writing && !this.next && this.sink.prepare && this.queued() >= this.opts.batchSize)
      this.prepareNext();
  }

  /**
   * Takes the next full batch and lets the sink encode it now, while its previous write is in progress,
   * instead of after that write returns: the Kafka sink's thread otherwise waited for that encoding
   * between two transactions.
   */
  private prepareNext(): void {
    const taken = this.takeBatch();
    const batch = this.deduped(taken);
    let prepared: unknown;
    try {
      if (batch.length > 0) prepared = this.sink.prepare!(batch);
    } catch {
      prepared = undefined; // the write encodes it again and reports what is wrong
    }
    this.next = { taken, batch, prepared };
  }

  queued(): number {
    return this.queuedEvents + (this.next?.taken.length ?? 0);
  }

  getStatus(): SinkStatus {
    return { ...this.status, checkpoint: this.checkpoint };
  }

  /** Resolves when everything queued so far is durable (or the runner stopped). */
  drain(): Promise<void> {
    // Stopped (gave up, or closed): nothing queued will be written, so nothing is left to wait for.
    if ((this.queued() === 0 || this.stopped) && !this.running) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private takeBatch(): PackedBatch {
    const batch = new PackedBatch();
    let want = this.opts.batchSize;
    while (want > 0 && this.head < this.blocks.length) {
      const r = this.head;
      const from = this.froms[r]!;
      const to = Math.min(this.tos[r]!, from + want);
      batch.add(this.blocks[r]!, from, to);
      want -= to - from;
      if (to === this.tos[r]) this.head++;
      else this.froms[r] = to;
    }
    this.queuedEvents -= batch.length;
    if (this.head === this.blocks.length) {
      this.blocks = [];
      this.froms = [];
      this.tos = [];
      this.head = 0;
    } else if (this.head >= 64) {
      // Drop taken runs now: the consumed front would otherwise keep their blocks alive.
      this.blocks.splice(0, this.head);
      this.froms.splice(0, this.head);
      this.tos.splice(0, this.head);
      this.head = 0;
    }
    return batch;
  }

  private async loop(): Promise<void> {
    this.running = true;
    try {
      while (!this.stopped && this.queued() > 0) {
        const next = this.next;
        this.next = undefined;
        const taken = next?.taken ?? this.takeBatch();
        const batch = next?.batch ?? this.deduped(taken);
        const skipped = taken.length - batch.length;
        if (skipped) this.status.skipped += skipped;
        if (batch.length > 0) {
          this.writing = true;
          const ok = await this.writeWithRetry(batch, next?.prepared);
          this.writing = false;
          if (!ok) return;
          this.checkpoint = batch.lastPosition();
          this.status.delivered += batch.length;
        }
        this.opts.onDurable(this.name, taken.lastOrdinal());
      }
    } finally {
      this.running = false;
      if (this.queued() === 0 || this.stopped) {
        const waiters = this.drainWaiters;
        this.drainWaiters = [];
        for (const w of waiters) w();
      } else {
        void this.loop();
      }
    }
  }

  /** Dedupe: a resent transaction's events at or below our checkpoint are already in the sink. */
  private deduped(taken: PackedBatch): PackedBatch {
    const cp = this.checkpoint;
    if (!cp) return taken;
    return taken.filter((b, i) => b.after(i, cp));
  }

  /** The first event over the sink's maxEventBytes in the batch (its table, id and size), if any. */
  private oversized(batch: PackedBatch): { table: string; id: string; bytes: number } | undefined {
    const max = this.sink.maxEventBytes;
    if (max === undefined) return undefined;
    let found: { table: string; id: string; bytes: number } | undefined;
    batch.filter((b, i) => {
      if (!found && b.byteLength(i) > max)
        found = { table: b.tables[i]!, id: b.id(i), bytes: b.byteLength(i) };
      return false;
    });
    return found;
  }

  /**
   * A batch the sink rejects permanently: split in halves, each written on its own (and split again
   * while rejected), until the rejected event is alone; that one goes to the dead letters and counts
   * as delivered. The good events around it are written as usual.
   */
  private async rejectBatch(batch: PackedBatch, reason: string): Promise<boolean> {
    if (batch.length > 1) {
      const half = batch.length >> 1;
      let k = 0;
      const first = batch.filter(() => k++ < half);
      k = 0;
      const second = batch.filter(() => k++ >= half);
      return (await this.writeWithRetry(first)) && this.writeWithRetry(second);
    }
    const e = batch.events()[0]!;
    await this.opts.deadLetters!.send({
      reason,
      sink: this.name,
      topic: this.sink.topicOf?.(e) ?? '',
      lsn: /"lsn":"([^"]*)"/.exec(e.json.slice(0, 512))?.[1] ?? '',
      id: e.id,
      table: e.table,
      type: e.type,
      partitionkey: e.partitionkey,
      json: e.json,
    });
    if (!this.sink.ownsCheckpoint && this.opts.store)
      await this.opts.store.save(this.name, batch.lastPosition());
    return true;
  }

  private async writeWithRetry(batch: PackedBatch, prepared?: unknown): Promise<boolean> {
    const maxBackoff = this.opts.maxBackoffMs ?? 5000;
    const oversized = this.oversized(batch);
    if (oversized && !this.opts.deadLetters) {
      // Never handed to the sink: the service would refuse it after its own retries (pstest's gRPC
      // answers RESOURCE_EXHAUSTED, retried for 20 s a time), and no retry changes its size.
      const e = new ConnectorError(
        'event_too_large',
        `${oversized.table}: event ${oversized.id} (${oversized.bytes} bytes) is larger than ${this.name}'s ` +
          `limit of ${this.sink.maxEventBytes} bytes; --dead-letter kafka:TOPIC|file:PATH sends such events aside`,
      );
      this.status = { ...this.status, state: 'failed', lastError: e.message };
      this.opts.onState?.(this.name, 'failed');
      this.opts.logger.error({ sink: this.name, err: e.message }, 'sink failed, giving up');
      this.opts.onFatal(this.name, e);
      this.stopped = true;
      return false;
    }
    if (oversized) {
      if (batch.length === 1)
        return this.rejectBatch(
          batch,
          `larger than ${this.name}'s limit of ${this.sink.maxEventBytes} bytes`,
        );
      return this.rejectBatch(batch, 'split');
    }
    for (let attempt = 1; ; attempt++) {
      const started = performance.now();
      try {
        // a prepared batch is used once: the sink may have handed its buffers on
        await this.sink.write(batch, attempt === 1 ? prepared : undefined);
        if (!this.sink.ownsCheckpoint && this.opts.store) {
          await this.opts.store.save(this.name, batch.lastPosition());
        }
        this.opts.onBatch?.(this.name, batch, performance.now() - started);
        if (this.status.state !== 'ok') {
          this.opts.logger.info({ sink: this.name, attempt }, 'sink recovered');
          this.status = { ...this.status, state: 'ok', lastError: undefined };
          this.opts.onState?.(this.name, 'ok');
        }
        return true;
      } catch (err) {
        const e = err as Error;
        const rejected = this.opts.deadLetters && !this.stopped ? this.sink.rejection?.(e) : undefined;
        if (rejected) return this.rejectBatch(batch, rejected);
        this.status = { ...this.status, state: 'retrying', lastError: e.message };
        // A ConnectorError says retrying cannot help (a file that could not be cut back after a
        // failed write): it stops the daemon as it is, with its code.
        if (attempt >= this.opts.retryLimit || this.stopped || e instanceof ConnectorError) {
          this.status.state = 'failed';
          this.opts.onState?.(this.name, 'failed');
          const failure = e instanceof ConnectorError ? e : new SinkFailedError(this.name, attempt, e);
          this.opts.logger.error({ sink: this.name, err: e.message, attempt }, 'sink failed, giving up');
          this.opts.onFatal(this.name, failure);
          this.stopped = true;
          return false;
        }
        this.status.retries++;
        this.opts.onRetry?.(this.name);
        if (attempt === 1) this.opts.onState?.(this.name, 'retrying');
        const delay = Math.min(maxBackoff, 100 * 2 ** (attempt - 1)) * (0.75 + Math.random() * 0.5);
        this.opts.logger.warn(
          { sink: this.name, err: e.message, attempt, retryInMs: Math.round(delay) },
          'sink write failed, retrying',
        );
        await new Promise<void>((r) => {
          this.wake = r;
          setTimeout(r, delay);
        });
      }
    }
  }

  async close(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    this.status.state = 'closed';
    await this.sink.close();
  }
}
