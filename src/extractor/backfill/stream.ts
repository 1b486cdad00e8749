import type { Logger } from '../../log.ts';
import { formatLsn, type Lsn } from '../../util/lsn.ts';
import type { MessageChange, Row, RowChange, TruncateChange } from '../decode/index.ts';
import {
  parseSignal,
  parseWatermark,
  SIGNAL_PREFIX,
  WATERMARK_PREFIX,
  WatermarkError,
  type Signal,
} from './messages.ts';
import { rowKey, WatermarkWindows } from './windows.ts';

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
  rows: Row[];
  /** Rows the chunk read, before the window dropped the changed ones. */
  read: number;
  /** No window was open for it: nothing emitted (the runner fails the backfill rather than skip rows). */
  lost: boolean;
  /** Commit LSN of the high watermark's transaction. */
  commitLsn: Lsn;
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

  constructor(options: BackfillStreamOptions) {
    this.o = options;
  }

  listen(listener: BackfillListener): void {
    this.listener = listener;
  }

  /** Whether a message might be ours (a cheap test before parsing). */
  static isOurs(m: MessageChange): boolean {
    return m.transactional && m.prefix.startsWith('tag-connector.');
  }

  /**
   * A transactional message of ours at `commitLsn` (its transaction's): a low watermark opens a
   * window, a high one closes it and returns the reads to emit, an end drops the backfill's windows,
   * a signal is passed on.
   */
  message(m: MessageChange, commitLsn: Lsn): ChunkReads | undefined {
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
    const rows = this.windows.close(w);
    if (rows === undefined) {
      // Only possible if the slot was confirmed past the low watermark, which the hold prevents.
      this.o.logger.error(
        { backfill: w.backfill, table: w.table, lsn: formatLsn(m.lsn) },
        'high watermark without its low watermark: chunk not emitted',
      );
    }
    const dot = w.table.indexOf('.');
    return {
      backfill: w.backfill,
      nonce: w.nonce,
      table: w.table,
      schema: w.table.slice(0, dot),
      name: w.table.slice(dot + 1),
      lsn: formatLsn(m.lsn),
      key: w.key,
      rows: rows ?? [],
      read: w.rows.length,
      lost: rows === undefined,
      commitLsn,
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

  /** A reconnect: Postgres resends from before the oldest open window, which rebuilds them. */
  reset(): void {
    this.windows.reset();
  }
}
