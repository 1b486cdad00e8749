import { DecodeError, type BeginChange } from '../decode/index.ts';
import type { TxContext } from './mapper.ts';

/**
 * Transaction assembly: BEGIN opens a context that every change until COMMIT belongs to, and each
 * change gets its index in the transaction (`seq`, part of the event id `<commitLsn>/<seq>`). Nothing
 * of a transaction is held: its changes stream through as they come.
 */
export class TransactionAssembler {
  /** The open transaction, or null between transactions. */
  tx: TxContext | null = null;
  private seq = 0;

  begin(change: BeginChange): void {
    this.tx = { xid: change.xid, commitLsn: change.commitLsn, commitTime: change.commitTime };
    this.seq = 0;
  }

  commit(lsn: string): void {
    if (!this.tx) throw new DecodeError(lsn, 'COMMIT without BEGIN');
    this.tx = null;
  }

  /** A logical decoding message: a transactional one takes a place in the sequence. */
  message(transactional: boolean): void {
    if (transactional && this.tx) this.seq++;
  }

  /** The next row change's seq in the open transaction. */
  nextSeq(lsn: string, kind: string): number {
    if (!this.tx) throw new DecodeError(lsn, `${kind} outside a transaction`);
    return this.seq++;
  }

  /** `n` consecutive seqs in the open transaction (a backfill chunk's reads); returns the first. */
  reserve(n: number): number {
    const first = this.seq;
    this.seq += n;
    return first;
  }

  /** Forgets a transaction cut by a lost connection (Postgres resends it whole). */
  reset(): void {
    this.tx = null;
    this.seq = 0;
  }
}
