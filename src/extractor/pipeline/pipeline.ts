import type { Logger } from '../../log.ts';
import type { Metrics } from '../../metrics.ts';
import type { SinkRunner } from '../../sinks/runner.ts';
import { formatLsn, parseLsn, type Lsn } from '../../util/lsn.ts';
import { BackfillStream, type ChunkReads } from '../backfill/index.ts';
import {
  type Catalog,
  type TableInfo,
  type Change,
  type MessageChange,
  type ReadChange,
  type Row,
  type RowChange,
  type TruncateChange,
  completeToast,
  skippedChange,
  toastToComplete,
} from '../decode/index.ts';
import { errors } from '../../errors.ts';
import { CheckpointTracker } from './checkpoint-tracker.ts';
import { Connection, type ReplicationSource } from '../replication/index.ts';
import { GovernanceError } from '../governance/index.ts';
import type { MappedEvent, Mapper, TxContext } from './mapper.ts';
import type { DeadLetterRoute } from '../../sinks/dead-letter/index.ts';
import { EventCounts } from './event-counts.ts';
import { EventPacker } from './event-packer.ts';
import { FlowControl } from './flow-control.ts';
import { InputQueue, type InputItem } from './input-queue.ts';
import { StatusUpdates } from './status-updates.ts';
import { TableLookup } from './tables.ts';
import { TransactionAssembler } from './transactions.ts';
import { ShapeTracker, type ShapeChange, type ShapeStore } from '../shapes/index.ts';
import type { TableFilter } from './roles.ts';

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
  /** Backfills' watermarks and signals in the stream (docs/backfill.md); none: messages are skipped. */
  backfill?: BackfillStream;
  /** Where the tables' shapes are recorded; with it, a change of columns emits `schema.changed`. */
  shapes?: ShapeStore;
}

export type PipelineState =
  'starting' | 'streaming' | 'paused' | 'reconnecting' | 'stopping' | 'stopped' | 'failed';

/**
 * Received items queued while the pipeline waits (sink capacity, a catalog load) or yields. Kept
 * small on purpose: queued changes outlive V8's young-generation cycles (see `accept`), and the
 * socket is only resumed once the queue is empty, which puts the stream back on the direct path.
 */
const INPUT_HIGH_WATER = 512;
const NO_COLUMNS: string[] = [];
/** Reads of a chunk mapped between two yields to the event loop (emitReads). */
const READ_SLICE = 256;

/**
 * replication stream → decoder → transaction assembly → mapper → sink runners → checkpoint tracker →
 * standby status updates (docs/design.md §2). Transactions are streamed through, never held whole;
 * in-flight events and bytes are bounded and at the bound the replication socket is paused until
 * sinks drain. The connection lifecycle lives in replication/connection.ts; the other parts live
 * beside this file: flow control, the input queue, transaction assembly, block pooling, table lookup,
 * status updates, the checkpoint tracker and the mapper.
 */
export class Pipeline {
  private readonly o: PipelineOptions;
  private readonly log: Logger;
  private readonly tracker: CheckpointTracker;
  private readonly connection: Connection;
  private readonly flow: FlowControl;
  private readonly input = new InputQueue();
  private readonly txs = new TransactionAssembler();
  private readonly packer = new EventPacker();
  private readonly tables: TableLookup;
  private readonly status: StatusUpdates;
  private readonly eventCounts: EventCounts;
  private readonly shapes?: ShapeTracker;
  private processing = false;
  private sinceYield = 0;
  private statusTimer?: NodeJS.Timeout;
  private lastReceivedLsn = '0/0';
  private stopping = false;
  private stopped = false;
  private doneResolve!: () => void;
  private doneReject!: (err: Error) => void;
  /** Resolves when the pipeline stopped cleanly, rejects on a fatal error. */
  readonly done: Promise<void>;
  fatalError?: Error;
  counts = { changes: 0, events: 0, transactions: 0 };

  constructor(options: PipelineOptions) {
    this.o = options;
    this.log = options.logger;
    this.tracker = new CheckpointTracker(
      options.runners.map((r) => r.name),
      options.startLsn,
    );
    this.connection = new Connection({
      logger: options.logger,
      open: options.connect,
      ...(options.beforeConnect ? { beforeConnect: options.beforeConnect } : {}),
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
      // In stream order: the notice of a change left out comes between its neighbours' data.
      onNotice: (severity, message) => this.accept({ k: 'n', lsn: '', severity, message }),
      onBreak: () => this.o.metrics?.reconnects.inc(),
      settle: () => this.settle(),
      onLive: () => {
        this.log.info({ confirmed: formatLsn(this.tracker.confirmedLsn()) }, 'streaming');
        this.status.send(false);
      },
      onFatal: (err) => this.fail(err),
    });
    this.flow = new FlowControl(this.tracker, options, this.connection, options.metrics);
    this.tables = new TableLookup(options.catalog, options.logger, () => !this.stopping && !this.fatalError);
    this.status = new StatusUpdates({
      send: (lsn) => this.connection.sendStatus(lsn),
      confirmed: () => this.tracker.confirmedLsn(),
      logger: options.logger,
      ...(options.metrics ? { metrics: options.metrics } : {}),
    });
    this.eventCounts = new EventCounts(options.metrics);
    if (options.shapes) this.shapes = new ShapeTracker(options.shapes);
    this.done = new Promise((res, rej) => {
      this.doneResolve = res;
      this.doneReject = rej;
    });
    this.done.catch(() => undefined);
  }

  get state(): PipelineState {
    if (this.fatalError) return 'failed';
    if (this.stopped) return 'stopped';
    if (this.stopping) return 'stopping';
    switch (this.connection.state) {
      case 'idle':
      case 'connecting':
        return 'starting';
      case 'reconnecting':
        return 'reconnecting';
      case 'stopped':
        return 'stopped';
      case 'live':
        return this.flow.paused ? 'paused' : 'streaming';
    }
  }

  /**
   * Why the pipeline cannot make progress right now, if it is waiting out a failure: the replication
   * link's last failure while reconnecting, or a catalog query's (readiness reports it).
   */
  problem(): Error | undefined {
    if (this.connection.state === 'reconnecting' && this.connection.lastError)
      return this.connection.lastError;
    return this.tables.failing;
  }

  async start(): Promise<void> {
    this.statusTimer = setInterval(() => this.status.send(false), this.o.statusIntervalMs);
    this.statusTimer.unref();
    await this.connection.start();
  }

  confirmedLsn(): Lsn {
    return this.tracker.confirmedLsn();
  }
  receivedLsn(): string {
    return this.lastReceivedLsn;
  }
  /** Events and bytes not yet durable everywhere, and the committed transactions awaiting them. */
  inFlight(): { events: number; bytes: number; transactions: number } {
    return {
      events: this.tracker.inFlightEvents(),
      bytes: this.tracker.inFlightBytes(),
      transactions: this.tracker.pendingTransactions(),
    };
  }

  /** Called by a sink runner when its events up to `ordinal` are durable. */
  markDurable = (sink: string, ordinal: number): void => {
    this.tracker.markDurable(sink, ordinal);
    this.packer.release(this.tracker.minDurable());
    this.updateFlow();
  };

  private updateFlow(): void {
    this.flow.update(!this.stopping && !this.processing && this.input.length === 0);
  }

  /** Resolves once everything received so far has been handed to the sinks (or the pipeline failed). */
  private async inputProcessed(): Promise<void> {
    while ((this.processing || this.input.length > 0) && !this.fatalError) {
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /**
   * After a break, before the next connection streams: finish what arrived before it, let the sinks
   * make it durable, then forget unconfirmed transactions: Postgres resends them from
   * confirmed_flush_lsn and the sinks skip what they hold.
   */
  private async settle(): Promise<void> {
    await this.inputProcessed();
    await Promise.all(this.o.runners.map((r) => r.drain()));
    this.tracker.resetPending();
    this.txs.reset();
    this.shapes?.reset(); // the replay's first change of each table reads the record again
    // The tracker's hold stays: the replay reopens the windows from their low watermarks.
    this.o.backfill?.reset();
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
    return this.processing || this.input.length > 0 || !!this.fatalError || this.flow.overCapacity();
  }

  private enqueue(item: InputItem): void {
    this.input.push(item);
    if (this.input.length >= INPUT_HIGH_WATER) this.flow.pause();
    if (!this.processing) void this.process();
  }

  /** Works through the queued input; `first` is a handled item still in progress (catalog load). */
  private async process(first?: Promise<void>): Promise<void> {
    if (this.processing) return;
    this.processing = true;
    try {
      if (first) await first;
      while (this.input.length > 0) {
        if (this.fatalError) return;
        if (this.flow.overCapacity()) {
          this.flow.pause();
          await this.flow.waitForCapacity();
          continue;
        }
        const pending = this.handle(this.input.shift());
        if (pending) await pending;
        // Let sink I/O completions run between slices of a large input burst: one long synchronous
        // run delays every sink's acknowledgement (and so commit-to-ack latency).
        if (++this.sinceYield >= 512) {
          this.sinceYield = 0;
          await new Promise<void>((r) => setImmediate(r));
        }
      }
      this.input.clear();
    } catch (err) {
      // Stopping: a catalog load gave up waiting; what was not delivered is resent on restart.
      if (this.stopping) this.log.warn({ err: (err as Error).message }, 'input left unprocessed at shutdown');
      else this.fail(err as Error);
    } finally {
      this.processing = false;
      this.updateFlow();
      if (this.input.length > 0 && !this.fatalError && !this.stopping) void this.process();
    }
  }

  private handle(item: InputItem): Promise<void> | void {
    if (item.k === 'n') return this.handleNotice(item.severity, item.message);
    this.lastReceivedLsn = item.lsn;
    if (item.k === 'ka') {
      this.tracker.keepalive(parseLsn(item.lsn));
      if (item.reply) this.status.send(true);
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
        this.txs.begin(change);
        this.tracker.begin();
        return;
      case 'commit':
        this.txs.commit(lsn);
        this.counts.transactions++;
        this.o.metrics?.transactions.inc();
        this.eventCounts.flush();
        this.tracker.commit(change.endLsn);
        return;
      case 'message':
        this.txs.message(change.transactional);
        if (this.o.backfill && this.txs.tx && BackfillStream.isOurs(change))
          return this.backfillMessage(change);
        return;
      case 'noop':
        return;
      default: {
        const seq = this.txs.nextSeq(lsn, change.kind);
        const tx = this.txs.tx!;
        return this.tables.withInfo(change.schema, change.table, (i) => this.emit(change, seq, i, tx));
      }
    }
  }

  /**
   * A notice from the walsender. One that reports a change of a tracked table left out of the stream
   * (wal2json: an UPDATE or DELETE of a table without a replica identity) stops the daemon before
   * anything after it is confirmed: the change is missing and a replay leaves it out again.
   */
  private handleNotice(severity: string, message: string): Promise<void> | void {
    const skipped = skippedChange({ severity, message });
    if (!skipped) {
      this.log.warn({ severity, notice: message }, 'PostgreSQL notice on the replication connection');
      return;
    }
    const tx = this.txs.tx;
    const where = tx
      ? `in the transaction committed at ${formatLsn(tx.commitLsn)}, after the change at LSN ${this.lastReceivedLsn}`
      : `after LSN ${this.lastReceivedLsn}`;
    const dot = skipped.table.indexOf('.');
    const fail = (info?: TableInfo) => {
      if (info && !this.o.filter.isTracked(info.root)) {
        this.log.warn(
          { table: skipped.table, notice: message },
          'the output plugin left out a change of an untracked table',
        );
        return;
      }
      this.o.metrics?.errors.inc({ kind: 'change_left_out' });
      throw errors.changeLeftOut(skipped.table, skipped.action, where, message);
    };
    // format-version 1 names no schema: judged as tracked (stopping is the safe side).
    if (dot < 0) return fail();
    return this.tables.withInfo(skipped.table.slice(0, dot), skipped.table.slice(dot + 1), fail);
  }

  private emit(
    change: RowChange | TruncateChange,
    seq: number,
    info: TableInfo,
    tx: TxContext,
  ): Promise<void> | void {
    if (!this.o.filter.isTracked(info.root)) return;
    if (this.shapes && change.kind !== 'truncate' && change.shape) {
      const shaped = this.shapes.check(info.root, change.shape, { commitLsn: tx.commitLsn, seq }, () =>
        info.columns.map((c) => ({ name: c.name, type: c.type })),
      );
      if (shaped instanceof Promise)
        return shaped.then((c) =>
          this.emitRow(change, this.schemaChanged(c, change, seq, info, tx), info, tx),
        );
      if (shaped) return this.emitRow(change, this.schemaChanged(shaped, change, seq, info, tx), info, tx);
    }
    return this.emitRow(change, seq, info, tx);
  }

  /**
   * The `schema.changed` event of a change that first shows new columns takes the change's seq, and
   * the change the next one (shapes/tracker.ts: every replay decides the same); returns the change's seq.
   */
  private schemaChanged(
    c: ShapeChange | null,
    change: RowChange,
    seq: number,
    info: TableInfo,
    tx: TxContext,
  ): number {
    if (!c) return seq;
    const mapped = this.o.mapper.mapSchemaChange(
      { root: info.root, schema: change.schema, table: change.table, lsn: change.lsn, change: c },
      tx,
      seq,
    );
    this.log.info(
      { table: info.root, id: `${formatLsn(tx.commitLsn)}/${seq}`, emitted: mapped !== null },
      'table columns changed',
    );
    if (mapped) this.deliver(mapped, seq, info, tx);
    return this.txs.nextSeq(change.lsn, change.kind);
  }

  private emitRow(
    change: RowChange | TruncateChange,
    seq: number,
    info: TableInfo,
    tx: TxContext,
  ): Promise<void> | void {
    // the columns at this change as the WAL showed them (shapes), rather than the catalog's now
    const columns = this.shapes?.columnInfo(info.root);
    if (columns) info = this.withColumns(info, columns);
    const backfill = this.o.backfill;
    if (backfill !== undefined && backfill.windows.size > 0)
      backfill.observe(info.root, change, change.kind === 'truncate' ? NO_COLUMNS : (change.pk ?? info.pk));
    let row = change.kind === 'truncate' ? null : change.new;
    let unchangedToast = NO_COLUMNS;
    if (change.kind !== 'truncate' && toastToComplete(change, info)) {
      const t = completeToast(change, info);
      if (t.stale) {
        // The table changed shape since we cached it: reload once and redo.
        this.tables.invalidate(change.schema, change.table);
        return this.tables.load(change.schema, change.table).then((fresh) => {
          const again = completeToast(change, fresh);
          return this.push(change, seq, fresh, again.row, again.unchangedToast, tx);
        });
      }
      row = t.row;
      unchangedToast = t.unchangedToast;
    }
    return this.push(change, seq, info, row, unchangedToast, tx);
  }

  private lastWithColumns?: { base: TableInfo; columns: TableInfo['columns']; info: TableInfo };

  /** The table's info with the WAL's columns (one object per table and shape, not per change). */
  private withColumns(base: TableInfo, columns: TableInfo['columns']): TableInfo {
    const last = this.lastWithColumns;
    if (last?.base === base && last.columns === columns) return last.info;
    const info = { ...base, columns };
    this.lastWithColumns = { base, columns, info };
    return info;
  }

  /**
   * A watermark or signal of ours: a high watermark's chunk is emitted here, at its position, each
   * read with the next seq of the watermark's transaction (so a replayed chunk gets the same ids).
   */
  private backfillMessage(change: MessageChange): Promise<void> | void {
    const backfill = this.o.backfill!;
    const tx = this.txs.tx!;
    const started = performance.now();
    const reads = backfill.message(change, tx.commitLsn);
    for (const c of backfill.takeClosed()) this.tracker.holdUntilDelivered(c.low, c.high);
    this.tracker.hold(backfill.hold());
    if (!reads) return;
    // The rows may still be on their way (the runner's statement, or the stored copy after a
    // restart): the input waits, so nothing after the high watermark overtakes its reads.
    if (reads instanceof Promise) return reads.then((r) => this.emitChunk(r, tx, started));
    return this.emitChunk(reads, tx, started);
  }

  /** `started`: when the stream reached the high watermark (ChunkReads.emitMs counts from there). */
  private emitChunk(reads: ChunkReads, tx: TxContext, started: number): Promise<void> | void {
    return this.tables.withInfo(reads.schema, reads.name, (i) => this.emitReads(reads, i, tx, started));
  }

  /**
   * Emits a chunk's reads, made one at a time from its rows (ChunkReadCursor), each with the next seq
   * of the high watermark's transaction (nothing else of it is handled until the chunk is emitted, so
   * a replay gives the same ids); a read sent to the dead letters is awaited in order. Every
   * READ_SLICE reads it yields to the event loop, so the sinks write the chunk's first events while
   * the rest are mapped (a live change after the chunk waits for the chunk's end, not a sink's turn).
   */
  private emitReads(
    reads: ChunkReads,
    info: TableInfo,
    tx: TxContext,
    started: number,
  ): Promise<void> | void {
    const tracked = this.o.filter.isTracked(info.root);
    const pk = reads.key.length > 0 ? reads.key : info.pk;
    let n = 0;
    for (let row = reads.rows.next(); row; row = reads.rows.next()) {
      const seq = this.txs.reserve(1);
      if (!tracked) continue;
      const change: ReadChange = {
        kind: 'read',
        lsn: reads.lsn,
        schema: reads.schema,
        table: reads.name,
        new: row,
        old: null,
        pk,
      };
      const pending = this.push(change, seq, info, row, NO_COLUMNS, tx);
      if (pending) return pending.then(() => this.emitReads(reads, info, tx, started));
      if (++n === READ_SLICE)
        return new Promise<void>((r) => setImmediate(r)).then(() => this.emitReads(reads, info, tx, started));
    }
    reads.emitMs = performance.now() - started;
    this.o.backfill!.emitted(reads);
  }

  private push(
    change: RowChange | ReadChange | TruncateChange,
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
    this.deliver(mapped, seq, info, tx);
  }

  private deliver(mapped: MappedEvent, seq: number, info: TableInfo, tx: TxContext): void {
    // Packed into the current block (event-block.ts: why not an object per event). The JSON, spliced
    // together from pieces of the wal2json message, is written to the block's slab as UTF-8 at once,
    // so neither it nor the message it was sliced from outlives this call.
    const { json, type } = mapped;
    const packer = this.packer;
    const i = packer.pack(json, tx.commitLsn, seq, info.root, type, mapped.partitionkey, tx.commitTime);
    const block = packer.current;
    block.ordinals[i] = this.tracker.event(block.byteLength(i));
    this.counts.events++;
    this.eventCounts.count(info.root, type);
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

  /** Stops streaming and goes through the reconnect path (e.g. the leader lock was lost). */
  interrupt(err: Error): void {
    this.connection.interrupt(err);
  }

  fail(err: Error): void {
    if (this.fatalError) return;
    this.fatalError = err;
    this.o.metrics?.errors.inc({ kind: err.name });
    this.log.error({ err: err.message }, 'fatal error, stopping');
    this.flow.wake();
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
    this.connection.pause();
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
    this.status.final();
    await this.connection.stop();
    const errors: Error[] = [];
    for (const r of [...this.o.runners].reverse()) await r.close().catch((e: Error) => errors.push(e));
    if (errors.length) this.log.warn({ errors: errors.map((e) => e.message) }, 'errors while closing sinks');
    this.stopped = true;
    this.log.info({ confirmed: formatLsn(this.tracker.confirmedLsn()), ...this.counts }, 'stopped');
  }
}
