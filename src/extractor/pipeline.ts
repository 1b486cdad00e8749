import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import { BlockPool, EventBlock } from '../sinks/event-block.ts';
import type { SinkRunner } from '../sinks/runner.ts';
import { formatLsn, parseLsn, type Lsn } from '../util/lsn.ts';
import type { Catalog, TableInfo } from './catalog.ts';
import { DecodeError, type Change, type Row, type RowChange, type TruncateChange } from './changes.ts';
import { CheckpointTracker } from './checkpoint-tracker.ts';
import { GovernanceError } from './governance/index.ts';
import type { Mapper, TxContext } from './mapper.ts';
import type { DeadLetterRoute } from '../sinks/dead-letter/index.ts';
import type { ReplicationSource } from './replication-source.ts';
import type { TableFilter } from './roles.ts';
import { completeToast, toastToComplete } from './toast.ts';

/** Bytes of one XLogData message → its change(s): a pgoutput Truncate naming n tables is n changes. */
export type Decoder = (payload: Buffer, walLsn: string) => Change | Change[];

export interface PipelineOptions {
  logger: Logger;
  metrics?: Metrics;
  decoder: Decoder;
  catalog: Catalog;
  filter: TableFilter;
  mapper: Mapper;
  runners: SinkRunner[];
  /** Where a change whose rules fail goes (docs/governance.md); without it such a change stops the daemon. */
  deadLetters?: DeadLetterRoute;
  /** A fresh source per (re)connection. */
  connect: () => ReplicationSource;
  /** Checks before each (re)connect: slot still there and valid (throws a fatal error if not). */
  beforeConnect?: () => Promise<void>;
  startLsn: Lsn;
  maxInFlightEvents: number;
  maxInFlightBytes: number;
  statusIntervalMs: number;
}

export type PipelineState =
  'starting' | 'streaming' | 'paused' | 'reconnecting' | 'stopping' | 'stopped' | 'failed';

type InputItem =
  | { k: 'c'; lsn: string; change: Change }
  | { k: 'ka'; lsn: string; reply: boolean }
  | { k: 'err'; lsn: string; error: Error };

/**
 * Received items queued while the pipeline waits (sink capacity, a catalog load) or yields. Kept
 * small on purpose: queued changes outlive V8's young-generation cycles (see `accept`), and the
 * socket is only resumed once the queue is empty, which puts the stream back on the direct path.
 */
const INPUT_HIGH_WATER = 512;
const NO_COLUMNS: string[] = [];
const KEEPALIVE_MAX_SILENCE_MS = 10_000;
/**
 * A paused stream resumes once in-flight events and bytes are back under this share of their bounds.
 * Not half: a sink's acknowledgement frees one batch, and with half the bound as the mark (5,000
 * events, 2,000-event batches) the stream stayed paused through the whole next batch, so the sink got
 * smaller batches and the decoder idled a third of the time (Kafka catch-up).
 */
const RESUME_FRACTION = 0.9;

/**
 * replication stream → decoder → transaction assembly → mapper → sink runners → checkpoint tracker →
 * standby status updates (DESIGN §2). Transactions are streamed through, never held whole; in-flight
 * events and bytes are bounded and at the bound the replication socket is paused until sinks drain.
 */
export class Pipeline {
  private readonly o: PipelineOptions;
  private readonly log: Logger;
  private tracker: CheckpointTracker;
  private source?: ReplicationSource;
  private input: (InputItem | undefined)[] = [];
  private inputHead = 0;
  private processing = false;
  private sinceYield = 0;
  private tx: TxContext | null = null;
  private seq = 0;
  private sourcePaused = false;
  private capacityWaiter?: () => void;
  private statusTimer?: NodeJS.Timeout;
  private lastSentLsn: Lsn = 0n;
  private lastSentAt = 0;
  private lastReceivedLsn = '0/0';
  private stopping = false;
  private reconnectAttempt = 0;
  private doneResolve!: () => void;
  private doneReject!: (err: Error) => void;
  /** Resolves when the pipeline stopped cleanly, rejects on a fatal error. */
  readonly done: Promise<void>;
  state: PipelineState = 'starting';
  fatalError?: Error;
  counts = { changes: 0, events: 0, transactions: 0 };

  constructor(options: PipelineOptions) {
    this.o = options;
    this.log = options.logger;
    this.tracker = new CheckpointTracker(
      options.runners.map((r) => r.name),
      options.startLsn,
    );
    this.done = new Promise((res, rej) => {
      this.doneResolve = res;
      this.doneReject = rej;
    });
    this.done.catch(() => undefined);
  }

  async start(): Promise<void> {
    this.statusTimer = setInterval(() => this.sendStatus(false), this.o.statusIntervalMs);
    this.statusTimer.unref();
    // A previous reader's walsender can linger a moment after it died ("slot is active for PID"):
    // wait for it rather than fail the takeover.
    for (let attempt = 1; ; attempt++) {
      try {
        await this.connect();
        return;
      } catch (err) {
        const e = err as Error & { code?: string };
        if (e.code !== '55006' || attempt >= 60) throw err;
        this.log.info({ err: e.message }, 'slot still held by a previous reader; waiting');
        await this.source?.stop().catch(() => undefined);
        this.source = undefined;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  confirmedLsn(): Lsn {
    return this.tracker.confirmedLsn();
  }
  receivedLsn(): string {
    return this.lastReceivedLsn;
  }
  inFlight(): { events: number; bytes: number } {
    return { events: this.tracker.inFlightEvents(), bytes: this.tracker.inFlightBytes() };
  }

  /** Called by a sink runner when its events up to `ordinal` are durable. */
  markDurable = (sink: string, ordinal: number): void => {
    this.tracker.markDurable(sink, ordinal);
    if (this.sealed.length > 0) this.releaseBlocks();
    this.updateFlow();
  };

  private overCapacity(): boolean {
    return (
      this.tracker.inFlightEvents() >= this.o.maxInFlightEvents ||
      this.tracker.inFlightBytes() >= this.o.maxInFlightBytes
    );
  }

  private underResumeMark(): boolean {
    return (
      this.tracker.inFlightEvents() <= this.o.maxInFlightEvents * RESUME_FRACTION &&
      this.tracker.inFlightBytes() <= this.o.maxInFlightBytes * RESUME_FRACTION
    );
  }

  private updateFlow(): void {
    const m = this.o.metrics;
    if (m) {
      m.inFlight.set(this.tracker.inFlightEvents());
      m.inFlightBytes.set(this.tracker.inFlightBytes());
    }
    if (this.capacityWaiter && !this.overCapacity()) {
      const w = this.capacityWaiter;
      this.capacityWaiter = undefined;
      w();
    }
    if (
      this.sourcePaused &&
      !this.stopping &&
      this.underResumeMark() &&
      !this.processing &&
      this.inputLength() === 0
    ) {
      this.sourcePaused = false;
      if (this.state === 'paused') this.state = 'streaming';
      m?.paused.set(0);
      this.source?.resume();
    }
  }

  private pauseSource(): void {
    if (this.sourcePaused) return;
    this.sourcePaused = true;
    if (this.state === 'streaming') this.state = 'paused';
    this.o.metrics?.paused.set(1);
    this.source?.pause();
  }

  private inputLength(): number {
    return this.input.length - this.inputHead;
  }

  private async connect(): Promise<void> {
    if (this.o.beforeConnect) await this.o.beforeConnect();
    const source = this.o.connect();
    this.source = source;
    await source.start({
      onData: (lsn, buf) => {
        // Decode right away: the protocol parser reuses its buffer, so the bytes are only valid now.
        let decoded: Change | Change[];
        try {
          decoded = this.o.decoder(buf, lsn);
        } catch (err) {
          return this.accept({ k: 'err', lsn, error: err as Error });
        }
        if (Array.isArray(decoded)) for (const change of decoded) this.acceptChange(lsn, change);
        else this.acceptChange(lsn, decoded);
      },
      onKeepalive: (lsn, reply) => this.accept({ k: 'ka', lsn, reply }),
      onClose: (err) => this.onSourceClosed(source, err),
    });
    if (this.sourcePaused) source.pause();
    this.state = this.sourcePaused ? 'paused' : 'streaming';
    this.reconnectAttempt = 0;
    this.log.info({ confirmed: formatLsn(this.tracker.confirmedLsn()) }, 'streaming');
    this.sendStatus(false);
  }

  /** Resolves once everything received so far has been handed to the sinks (or the pipeline failed). */
  private async inputProcessed(): Promise<void> {
    while ((this.processing || this.inputLength() > 0) && !this.fatalError) {
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /**
   * Handles a received item at once when nothing is queued ahead of it, else queues it. Handling in
   * the socket's own callback keeps a change's objects short-lived: a queue of decoded changes that
   * outlives a young-generation GC cycle gets copied and promoted, and collecting that garbage cost
   * a third of the daemon's CPU in catch-up. The socket's read loop is the natural slice (one read,
   * at most 64 KiB, per turn of the event loop), so sink I/O completions still run in between.
   */
  private accept(item: InputItem): void {
    if (this.mustQueue()) return this.enqueue(item);
    let pending: Promise<void> | void;
    try {
      pending = this.handle(item);
    } catch (err) {
      return this.fail(err as Error);
    }
    if (pending) void this.process(pending);
  }

  /** accept() for a change, with no item made unless it has to wait. */
  private acceptChange(lsn: string, change: Change): void {
    if (this.mustQueue()) return this.enqueue({ k: 'c', lsn, change });
    let pending: Promise<void> | void;
    try {
      pending = this.handleChange(lsn, change);
    } catch (err) {
      return this.fail(err as Error);
    }
    if (pending) void this.process(pending);
  }

  private mustQueue(): boolean {
    return this.processing || this.inputHead < this.input.length || !!this.fatalError || this.overCapacity();
  }

  private enqueue(item: InputItem): void {
    this.input.push(item);
    if (this.inputLength() >= INPUT_HIGH_WATER) this.pauseSource();
    if (!this.processing) void this.process();
  }

  /** Works through the queued input; `first` is a handled item still in progress (catalog load). */
  private async process(first?: Promise<void>): Promise<void> {
    if (this.processing) return;
    this.processing = true;
    try {
      if (first) await first;
      while (this.inputHead < this.input.length) {
        if (this.fatalError) return;
        if (this.overCapacity()) {
          this.pauseSource();
          await new Promise<void>((r) => (this.capacityWaiter = r));
          continue;
        }
        const item = this.input[this.inputHead]!;
        this.input[this.inputHead++] = undefined;
        if (this.inputHead >= 4096) {
          this.input.splice(0, this.inputHead);
          this.inputHead = 0;
        }
        const pending = this.handle(item);
        if (pending) await pending;
        // Let sink I/O completions run between slices of a large input burst: one long synchronous
        // run delays every sink's acknowledgement (and so commit-to-ack latency).
        if (++this.sinceYield >= 512) {
          this.sinceYield = 0;
          await new Promise<void>((r) => setImmediate(r));
        }
      }
      this.input = [];
      this.inputHead = 0;
    } catch (err) {
      this.fail(err as Error);
    } finally {
      this.processing = false;
      this.updateFlow();
      if (this.inputHead < this.input.length && !this.fatalError) void this.process();
    }
  }

  private handle(item: InputItem): Promise<void> | void {
    this.lastReceivedLsn = item.lsn;
    if (item.k === 'ka') {
      this.tracker.keepalive(parseLsn(item.lsn));
      if (item.reply) this.sendStatus(true);
      return;
    }
    if (item.k === 'err') throw item.error;
    return this.handleChange(item.lsn, item.change);
  }

  private handleChange(lsn: string, change: Change): Promise<void> | void {
    this.lastReceivedLsn = lsn;
    this.counts.changes++;
    switch (change.kind) {
      case 'begin':
        this.tx = { xid: change.xid, commitLsn: change.commitLsn, commitTime: change.commitTime };
        this.seq = 0;
        this.tracker.begin();
        return;
      case 'commit':
        if (!this.tx) throw new DecodeError(lsn, 'COMMIT without BEGIN');
        this.tx = null;
        this.counts.transactions++;
        this.o.metrics?.transactions.inc();
        this.flushEventCount();
        this.tracker.commit(change.endLsn);
        return;
      case 'message':
        if (change.transactional && this.tx) this.seq++;
        return;
      case 'noop':
        return;
      default: {
        if (!this.tx) throw new DecodeError(lsn, `${change.kind} outside a transaction`);
        const seq = this.seq++;
        const info = this.tableInfo(change.schema, change.table);
        if (info) return this.emit(change, seq, info);
        return this.o.catalog.load(change.schema, change.table).then((i) => this.emit(change, seq, i));
      }
    }
  }

  private lastInfo?: TableInfo;
  private lastSchema = '';
  private lastTable = '';

  /** The cached table info; changes come in runs of one table, so the last one is checked first. */
  private tableInfo(schema: string, table: string): TableInfo | undefined {
    if (this.lastInfo && schema === this.lastSchema && table === this.lastTable) return this.lastInfo;
    const info = this.o.catalog.cached(schema, table);
    this.lastInfo = info;
    this.lastSchema = schema;
    this.lastTable = table;
    return info;
  }

  /** Events counted per (table, type) run and added to the metric when the run ends (not per event). */
  private countRun = { table: '', type: '', n: 0 };

  private countEvent(table: string, type: string): void {
    const r = this.countRun;
    if (r.n > 0 && r.table === table && r.type === type) {
      if (++r.n >= 1024) this.flushEventCount(); // a huge transaction still shows progress
      return;
    }
    this.flushEventCount();
    r.table = table;
    r.type = type;
    r.n = 1;
  }

  private flushEventCount(): void {
    const r = this.countRun;
    if (r.n > 0) this.o.metrics?.events.inc({ table: r.table, type: r.type }, r.n);
    r.n = 0;
  }

  private emit(change: RowChange | TruncateChange, seq: number, info: TableInfo): Promise<void> | void {
    if (!this.o.filter.isTracked(info.root)) return;
    const tx = this.tx!;
    let row = change.kind === 'truncate' ? null : change.new;
    let unchangedToast = NO_COLUMNS;
    if (change.kind !== 'truncate' && toastToComplete(change, info)) {
      const t = completeToast(change, info);
      if (t.stale) {
        // The table changed shape since we cached it: reload once and redo.
        this.o.catalog.invalidate(change.schema, change.table);
        this.lastInfo = undefined;
        return this.o.catalog.load(change.schema, change.table).then((fresh) => {
          const again = completeToast(change, fresh);
          return this.push(change, seq, fresh, again.row, again.unchangedToast, tx);
        });
      }
      row = t.row;
      unchangedToast = t.unchangedToast;
    }
    return this.push(change, seq, info, row, unchangedToast, tx);
  }

  private push(
    change: RowChange | TruncateChange,
    seq: number,
    info: TableInfo,
    row: Row | null,
    unchangedToast: string[],
    tx: TxContext,
  ): Promise<void> | void {
    const pk = change.kind === 'truncate' ? [] : (change.pk ?? info.pk);
    let mapped;
    try {
      mapped = this.o.mapper.map(
        { change, root: info.root, row, unchangedToast, pk, oldFull: info.replicaIdentity === 'f' },
        tx,
        seq,
      );
    } catch (err) {
      if (err instanceof GovernanceError)
        return this.rejected(err, change.lsn, `${formatLsn(tx.commitLsn)}/${seq}`);
      throw err;
    }
    if (!mapped) return; // left out by a filter; its transaction's end still moves the checkpoint
    // Packed into the current block (event-block.ts: why not an object per event). The JSON, spliced
    // together from pieces of the wal2json message, is written to the block's slab as UTF-8 at once,
    // so neither it nor the message it was sliced from outlives this call.
    const { json, type } = mapped;
    const pack = (b: EventBlock) =>
      b.append(json, tx.commitLsn, seq, info.root, type, mapped.partitionkey, tx.commitTime);
    let block = this.block;
    let i = pack(block);
    // A full block is sealed (given back once durable everywhere); the next one comes from the pool,
    // or is made to the size of an event bigger than a pooled block.
    if (i < 0) i = pack((block = this.nextBlock(this.pool.take())));
    if (i < 0) i = pack((block = this.nextBlock(EventBlock.for(json))));
    block.ordinals[i] = this.tracker.event(block.byteLength(i));
    this.counts.events++;
    this.countEvent(info.root, type);
    for (const r of this.o.runners) r.pushPacked(block, i);
  }

  /**
   * A change whose rules failed: to the dead letters (awaited, so its transaction is confirmed only
   * once the letter is durable), or, without a dead-letter route, a fatal error. Never row values.
   */
  private rejected(err: GovernanceError, lsn: string, id: string): Promise<void> {
    this.o.metrics?.errors.inc({ kind: 'governance' });
    const route = this.o.deadLetters;
    if (!route) {
      throw Object.assign(
        new Error(`${err.table}: the change at LSN ${lsn} (event ${id}) was rejected: ${err.reason}`),
        { name: 'GovernanceError' },
      );
    }
    return route.send({
      reason: err.reason,
      sink: 'governance',
      topic: '',
      lsn,
      id,
      table: err.table,
      type: err.event?.type ?? '',
      partitionkey: err.event?.partitionkey ?? '',
      json: err.event?.json,
    });
  }

  private readonly pool = new BlockPool();
  /** The block events are packed into. */
  private block = this.pool.take();
  /** Full blocks, oldest first, until every sink holds their events durably. */
  private sealed: EventBlock[] = [];

  private nextBlock(block: EventBlock): EventBlock {
    this.sealed.push(this.block);
    this.block = block;
    return block;
  }

  /** Gives back to the pool the full blocks whose events every sink holds durably. */
  private releaseBlocks(): void {
    const durable = this.tracker.minDurable();
    let n = 0;
    while (n < this.sealed.length && this.sealed[n]!.lastOrdinal() <= durable)
      this.pool.give(this.sealed[n++]!);
    if (n > 0) this.sealed.splice(0, n);
  }

  private sendStatus(replyRequested: boolean): void {
    const source = this.source;
    if (!source || this.state === 'reconnecting' || this.state === 'stopped') return;
    const lsn = this.tracker.confirmedLsn();
    const now = Date.now();
    if (!replyRequested && lsn === this.lastSentLsn && now - this.lastSentAt < KEEPALIVE_MAX_SILENCE_MS)
      return;
    if (lsn < this.lastSentLsn)
      throw new Error(
        `confirmed LSN would move backwards (${formatLsn(lsn)} < ${formatLsn(this.lastSentLsn)})`,
      );
    try {
      source.sendStatus(lsn);
      this.lastSentLsn = lsn;
      this.lastSentAt = now;
      this.o.metrics?.confirmedLsn.set(Number(lsn));
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'could not send status update');
    }
  }

  /** Stops streaming and goes through the reconnect path (e.g. the leader lock was lost). */
  interrupt(err: Error): void {
    if (this.source && this.state !== 'reconnecting') this.onSourceClosed(this.source, err);
  }

  private onSourceClosed(source: ReplicationSource, err?: Error): void {
    if (source !== this.source || this.stopping || this.fatalError) return;
    if (!err) return;
    this.log.warn({ err: err.message }, 'replication connection lost; reconnecting');
    this.o.metrics?.reconnects.inc();
    this.state = 'reconnecting';
    void this.reconnect();
  }

  private async reconnect(): Promise<void> {
    const old = this.source;
    this.source = undefined;
    await old?.stop().catch(() => undefined);
    // Finish what arrived before the break, let the sinks make it durable, then forget unconfirmed
    // transactions: Postgres resends them from confirmed_flush_lsn and the sinks skip what they hold.
    await this.inputProcessed();
    await Promise.all(this.o.runners.map((r) => r.drain()));
    this.tracker.resetPending();
    this.tx = null;
    for (;;) {
      if (this.stopping || this.fatalError) return;
      this.reconnectAttempt++;
      const delay = Math.min(10_000, 250 * 2 ** Math.min(this.reconnectAttempt - 1, 6));
      await new Promise((r) => setTimeout(r, delay));
      if (this.stopping || this.fatalError) return;
      try {
        await this.connect();
        return;
      } catch (err) {
        const e = err as Error & { exitCode?: number };
        if (e.exitCode && e.exitCode !== 1) return this.fail(e); // slot lost / invalidated: fatal
        this.log.warn({ err: e.message, attempt: this.reconnectAttempt }, 'reconnect failed');
        const failed = this.source as ReplicationSource | undefined;
        await failed?.stop().catch(() => undefined);
        this.source = undefined;
      }
    }
  }

  fail(err: Error): void {
    if (this.fatalError) return;
    this.fatalError = err;
    this.state = 'failed';
    this.o.metrics?.errors.inc({ kind: err.name });
    this.log.error({ err: err.message }, 'fatal error, stopping');
    this.capacityWaiter?.();
    void this.shutdown(2000).finally(() => this.doneReject(err));
  }

  /** Drains in-flight events (bounded by `timeoutMs`), confirms what is durable, closes everything. */
  async stop(timeoutMs: number): Promise<void> {
    if (this.stopping) return this.done.catch(() => undefined);
    await this.shutdown(timeoutMs);
    this.doneResolve();
  }

  private async shutdown(timeoutMs: number): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.state !== 'failed') this.state = 'stopping';
    this.source?.pause();
    const deadline = Date.now() + timeoutMs;
    const timeout = new Promise<void>((r) => setTimeout(r, Math.max(0, timeoutMs)).unref());
    if (!this.fatalError) {
      const drained = (async () => {
        await this.inputProcessed();
        await Promise.all(this.o.runners.map((r) => r.drain()));
      })();
      await Promise.race([drained, timeout]);
      if (Date.now() >= deadline)
        this.log.warn('shutdown drain timed out; undelivered events will be resent on restart');
    }
    clearInterval(this.statusTimer);
    try {
      const lsn = this.tracker.confirmedLsn();
      if (lsn > this.lastSentLsn) this.source?.sendStatus(lsn);
      this.lastSentLsn = lsn;
    } catch {
      /* connection already gone */
    }
    await this.source?.stop().catch(() => undefined);
    this.source = undefined;
    const errors: Error[] = [];
    for (const r of [...this.o.runners].reverse()) await r.close().catch((e: Error) => errors.push(e));
    if (errors.length) this.log.warn({ errors: errors.map((e) => e.message) }, 'errors while closing sinks');
    if (this.state !== 'failed') this.state = 'stopped';
    this.log.info({ confirmed: formatLsn(this.tracker.confirmedLsn()), ...this.counts }, 'stopped');
  }
}
