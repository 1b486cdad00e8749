import type { Logger } from '../../log.ts';
import { formatLsn, type Lsn } from '../../util/lsn.ts';
import type { MessageChange, RowChange, TruncateChange } from '../decode/index.ts';
import {
  type ChunkData,
  type HighWatermark,
  parseSignal,
  parseWatermark,
  SIGNAL_PREFIX,
  WATERMARK_PREFIX,
  WatermarkError,
  type Signal,
} from './messages.ts';
import { ChunkReadCursor, rowKey, WatermarkWindows, type ClosedWindow } from './windows.ts';

/** A high watermark the stream reached: the chunk's reads to emit at its position. */
export interface ChunkReads {
  backfill: string;
  nonce: string;
  /** schema.table */
  table: string;
  schema: string;
  name: string;
  /** LSN of the high watermark message. */
  lsn: string;
  key: string[];
  /** The reads to emit, one at a time (the rows the window did not drop). */
  rows: ChunkReadCursor;
  /** Rows the chunk read, before the window dropped the changed ones. */
  read: number;
  /**
   * Nothing emitted because no window was open for it, or its rows are gone (the unlogged copy lost
   * in a PostgreSQL restart): the runner fails the backfill rather than skip rows.
   */
  lost: boolean;
  /** Commit LSN of the high watermark's transaction. */
  commitLsn: Lsn;
  /**
   * Milliseconds from the stream reaching the high watermark to the last read handed to the sinks
   * (set by the pipeline): how long the chunk held the live changes behind it.
   */
  emitMs: number;
}

export interface BackfillStreamOptions {
  slot: string;
  stateSchema: string;
  logger: Logger;
}

/** Told when the stream has emitted a chunk or seen a signal (the backfill runner listens). */
export interface BackfillListener {
  chunkEmitted(reads: ChunkReads): void;
  /** A sync watermark reached the stream, in the transaction committed at `commitLsn`. */
  synced(nonce: string, commitLsn: Lsn): void;
  signal(signal: Signal): void;
  /**
   * A chunk's rows, by its nonce: the runner's in-memory copy (a promise while its statement is still
   * answering: the stream may reach the high watermark before the client sees the result), else the
   * stored copy read back (a replay after a restart); undefined when neither exists.
   */
  chunk(backfill: string, nonce: string): ChunkData | Promise<ChunkData | undefined>;
}

/**
 * The stream's side of backfills (docs/backfill.md): reads our watermark and signal messages in
 * stream order, keeps the chunk windows, tells the pipeline which reads to emit and how far the slot
 * may be confirmed. I/O-free; the runner (runner.ts) writes the watermarks.
 */
export class BackfillStream {
  readonly windows = new WatermarkWindows();
  private readonly o: BackfillStreamOptions;
  private listener?: BackfillListener;
  private closedWindows: { low: Lsn; high: Lsn }[] = [];
  /** Resolves once a listener is there: a replay may reach a high watermark before the runner exists. */
  private readonly listening: Promise<BackfillListener>;
  private resolveListening!: (l: BackfillListener) => void;

  constructor(options: BackfillStreamOptions) {
    this.o = options;
    this.listening = new Promise((r) => (this.resolveListening = r));
  }

  listen(listener: BackfillListener): void {
    this.listener = listener;
    this.resolveListening(listener);
  }

  /** Whether a message might be ours (a cheap test before parsing). */
  static isOurs(m: MessageChange): boolean {
    return m.transactional && m.prefix.startsWith('tag-connector.');
  }

  /**
   * A transactional message of ours at `commitLsn` (its transaction's): a low watermark opens a
   * window, a high one closes it and gives the reads to emit (a promise when the rows are still on
   * their way from the runner or the state store), an end drops the backfill's windows, a signal is
   * passed on. The window closes here, in stream order, whatever the rows' wait.
   */
  message(m: MessageChange, commitLsn: Lsn): ChunkReads | Promise<ChunkReads> | undefined {
    if (m.prefix === SIGNAL_PREFIX) {
      const signal = parseSignal(m.content);
      if (!signal) this.o.logger.warn({ lsn: formatLsn(m.lsn) }, 'ignoring a malformed signal');
      else if (signal.schema === this.o.stateSchema) this.listener?.signal(signal);
      return undefined;
    }
    if (m.prefix !== WATERMARK_PREFIX) return undefined;
    let w;
    try {
      w = parseWatermark(m.content);
    } catch (err) {
      if (!(err instanceof WatermarkError)) throw err;
      this.o.logger.warn({ lsn: formatLsn(m.lsn), err: err.message }, 'ignoring a malformed watermark');
      return undefined;
    }
    if (w.slot !== this.o.slot) return undefined; // another daemon's backfill on the same database
    if (w.kind === 'low') {
      this.windows.open(w, commitLsn);
      return undefined;
    }
    if (w.kind === 'end') {
      this.windows.end(w.backfill);
      return undefined;
    }
    if (w.kind === 'sync') {
      this.listener?.synced(w.nonce, commitLsn);
      return undefined;
    }
    const win = this.windows.close(w);
    if (win === undefined) {
      // Only possible if the slot was confirmed past the low watermark, which the hold prevents.
      this.o.logger.error(
        { backfill: w.backfill, table: w.table, lsn: formatLsn(m.lsn) },
        'high watermark without its low watermark: chunk not emitted',
      );
      return this.reads(w, m.lsn, commitLsn, undefined, undefined);
    }
    this.closedWindows.push({ low: win.lowLsn, high: commitLsn });
    if (w.inline) return this.reads(w, m.lsn, commitLsn, win, w.inline);
    if (w.count === 0) return this.reads(w, m.lsn, commitLsn, win, { columns: [], types: [], rows: '[]' });
    const data = this.listener?.chunk(w.backfill, w.nonce);
    if (data !== undefined && !(data instanceof Promise)) return this.reads(w, m.lsn, commitLsn, win, data);
    return (async () => {
      const got = await (data ?? (await this.listening).chunk(w.backfill, w.nonce));
      if (got === undefined)
        this.o.logger.error(
          { backfill: w.backfill, table: w.table, lsn: formatLsn(m.lsn) },
          'the rows of a chunk are gone (PostgreSQL restarted?): chunk not emitted',
        );
      return this.reads(w, m.lsn, commitLsn, win, got);
    })();
  }

  private reads(
    w: HighWatermark,
    lsn: Lsn,
    commitLsn: Lsn,
    win: ClosedWindow | undefined,
    data: ChunkData | undefined,
  ): ChunkReads {
    const dot = w.table.indexOf('.');
    const lost = win === undefined || data === undefined;
    return {
      backfill: w.backfill,
      nonce: w.nonce,
      table: w.table,
      schema: w.table.slice(0, dot),
      name: w.table.slice(dot + 1),
      lsn: formatLsn(lsn),
      key: w.key,
      rows: new ChunkReadCursor(lost ? undefined : data, w.key, win),
      read: w.count,
      lost,
      commitLsn,
      emitMs: 0,
    };
  }

  /** After the pipeline emitted a chunk's reads. */
  emitted(reads: ChunkReads): void {
    this.listener?.chunkEmitted(reads);
  }

  /** A change of a tracked table (by its root): recorded in the windows open on that table. */
  observe(root: string, change: RowChange | TruncateChange, pk: string[]): void {
    if (!this.windows.watches(root)) return;
    if (change.kind === 'truncate') return this.windows.truncate(root);
    const key = change.new ? rowKey(change.new, pk) : undefined;
    const oldKey = change.old ? rowKey(change.old, pk) : undefined;
    this.windows.observe(root, key, oldKey);
  }

  hold(): Lsn | null {
    return this.windows.holdLsn();
  }

  /**
   * Windows closed since the last call, as (low watermark commit, high watermark commit): each keeps
   * holding the slot until its high watermark's transaction is delivered (CheckpointTracker).
   */
  takeClosed(): { low: Lsn; high: Lsn }[] {
    const out = this.closedWindows;
    if (out.length > 0) this.closedWindows = [];
    return out;
  }

  /** A reconnect: Postgres resends from before the oldest open window, which rebuilds them. */
  reset(): void {
    this.windows.reset();
  }
}
