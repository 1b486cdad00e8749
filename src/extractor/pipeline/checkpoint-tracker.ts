import type { Lsn } from '../../util/lsn.ts';

interface PendingTx {
  endLsn: Lsn;
  /** Ordinal of the transaction's last event (for an empty transaction: of the event before it). */
  lastOrdinal: number;
}

/**
 * Which LSN may be confirmed to Postgres (docs/design.md §3). Events get increasing ordinals; each sink reports
 * the highest ordinal it holds durably; a transaction is done when every sink has its last event, and
 * only then is its end LSN confirmable. The confirmed LSN is the low watermark over all sinks and never
 * moves backwards. Pure: no I/O, no timers.
 */
export class CheckpointTracker {
  private nextOrdinal = 1;
  private readonly durable = new Map<string, number>();
  private readonly pending: PendingTx[] = [];
  private pendingHead = 0;
  private openTx = false;
  private confirmed: Lsn;
  /** The highest LSN confirmable if nothing held it back. */
  private reached: Lsn;
  /** While set, the confirmed LSN stays at or below it (an open backfill window: docs/backfill.md). */
  private holdAt: Lsn | null = null;
  /**
   * Closed backfill windows whose high watermark's transaction is not delivered yet, in stream order:
   * until it is, a restart must replay from the low watermark (else the high one arrives without its
   * window), so the confirmed LSN stays at or below `low` until `reached` passes `high`.
   */
  private readonly closing: { low: Lsn; high: Lsn }[] = [];
  /** (ordinal, bytes) of events not yet durable everywhere, for the in-flight byte bound. */
  private readonly sizes: number[] = [];
  private sizesHead = 0;
  private sizesFirstOrdinal = 1;
  private bytesInFlight = 0;

  constructor(sinks: readonly string[], startLsn: Lsn) {
    for (const s of sinks) this.durable.set(s, 0);
    this.confirmed = startLsn;
    this.reached = startLsn;
  }

  /**
   * Keeps the confirmed LSN at or below `lsn` (null: no limit). Never moves it backwards: a hold
   * below what is already confirmed only stops it from advancing.
   */
  hold(lsn: Lsn | null): void {
    if (lsn === this.holdAt) return;
    this.holdAt = lsn;
    this.settle();
  }

  /**
   * A backfill window (low watermark committed at `low`) closed by a high watermark in the transaction
   * committed at `high`: the hold of the window lasts until that transaction is delivered everywhere.
   */
  holdUntilDelivered(low: Lsn, high: Lsn): void {
    this.closing.push({ low, high });
    this.settle();
  }

  private reach(lsn: Lsn): void {
    if (lsn > this.reached) this.reached = lsn;
  }

  private settle(): void {
    // `reached` past a transaction's commit LSN means it was delivered (reached is the end of a
    // delivered transaction, or a keepalive's position with nothing pending).
    while (this.closing.length > 0 && this.closing[0]!.high < this.reached) this.closing.shift();
    let hold = this.holdAt;
    for (const c of this.closing) if (hold === null || c.low < hold) hold = c.low;
    const c = hold !== null && hold < this.reached ? hold : this.reached;
    if (c > this.confirmed) this.confirmed = c;
  }

  begin(): void {
    this.openTx = true;
  }

  /** Registers an event of the open transaction; returns its ordinal. */
  event(bytes: number): number {
    const ordinal = this.nextOrdinal++;
    this.sizes.push(bytes);
    this.bytesInFlight += bytes;
    return ordinal;
  }

  commit(endLsn: Lsn): void {
    this.openTx = false;
    const lastOrdinal = this.nextOrdinal - 1;
    // A transaction without events since the newest pending one (untracked rows only, a heartbeat)
    // becomes confirmable at the same moment as that one: it moves that entry's end instead of adding
    // its own, so the list holds at most one entry per transaction with events, which the in-flight
    // bound limits. One entry per transaction grew without limit (and without pausing the socket)
    // while a sink was slow on a server busy with untracked writes.
    const newest =
      this.pendingHead < this.pending.length ? this.pending[this.pending.length - 1]! : undefined;
    if (newest && newest.lastOrdinal === lastOrdinal) {
      if (endLsn > newest.endLsn) newest.endLsn = endLsn;
    } else this.pending.push({ endLsn, lastOrdinal });
    this.advance();
  }

  /**
   * A server keepalive at `walEnd`: when nothing is open or pending, everything before it has been
   * received and delivered, so it is safe to confirm (this keeps an idle slot from holding WAL).
   */
  keepalive(walEnd: Lsn): void {
    if (this.openTx || this.pendingHead < this.pending.length) return;
    if (this.minDurable() < this.nextOrdinal - 1) return;
    this.reach(walEnd);
    this.settle();
  }

  markDurable(sink: string, ordinal: number): void {
    const prev = this.durable.get(sink);
    if (prev === undefined) throw new Error(`unknown sink ${sink}`);
    if (ordinal < prev) throw new Error(`sink ${sink} moved backwards: ${ordinal} < ${prev}`);
    this.durable.set(sink, ordinal);
    this.advance();
  }

  minDurable(): number {
    let min = Infinity;
    for (const v of this.durable.values()) if (v < min) min = v;
    return min === Infinity ? this.nextOrdinal - 1 : min;
  }

  private advance(): void {
    const low = this.minDurable();
    while (this.pendingHead < this.pending.length && this.pending[this.pendingHead]!.lastOrdinal <= low) {
      const tx = this.pending[this.pendingHead++]!;
      this.reach(tx.endLsn);
    }
    this.settle();
    if (this.pendingHead > 1024 && this.pendingHead * 2 > this.pending.length) {
      this.pending.splice(0, this.pendingHead);
      this.pendingHead = 0;
    }
    while (this.sizesFirstOrdinal <= low && this.sizesHead < this.sizes.length) {
      this.bytesInFlight -= this.sizes[this.sizesHead++]!;
      this.sizesFirstOrdinal++;
    }
    if (this.sizesHead > 4096 && this.sizesHead * 2 > this.sizes.length) {
      this.sizes.splice(0, this.sizesHead);
      this.sizesHead = 0;
    }
  }

  /** Forget undelivered transactions (after a lost connection Postgres resends them). */
  resetPending(): void {
    this.pending.length = 0;
    this.pendingHead = 0;
    this.openTx = false;
  }

  confirmedLsn(): Lsn {
    return this.confirmed;
  }
  inFlightEvents(): number {
    return this.nextOrdinal - 1 - this.minDurable();
  }
  inFlightBytes(): number {
    return this.bytesInFlight;
  }
  lastOrdinal(): number {
    return this.nextOrdinal - 1;
  }
  pendingTransactions(): number {
    return this.pending.length - this.pendingHead;
  }
}
