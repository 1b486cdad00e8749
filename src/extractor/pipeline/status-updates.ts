import type { Logger } from '../../log.ts';
import type { Metrics } from '../../metrics.ts';
import { formatLsn, type Lsn } from '../../util/lsn.ts';

/** A status update is sent at least this often even when the confirmed LSN did not move. */
const KEEPALIVE_MAX_SILENCE_MS = 10_000;

export interface StatusUpdateOptions {
  /** Sends on the live link; false when there is none. */
  send: (lsn: Lsn) => boolean;
  /** The durable low watermark over all sinks. */
  confirmed: () => Lsn;
  logger: Logger;
  metrics?: Metrics;
}

/**
 * Standby status updates (docs/design.md §3): the flush position is the durable low watermark, sent on
 * an interval and in reply to a keepalive, never moving backwards (that would be a bug: throw).
 */
export class StatusUpdates {
  private readonly o: StatusUpdateOptions;
  private lastSentLsn: Lsn = 0n;
  private lastSentAt = 0;

  constructor(options: StatusUpdateOptions) {
    this.o = options;
  }

  send(replyRequested: boolean): void {
    const lsn = this.o.confirmed();
    const now = Date.now();
    if (!replyRequested && lsn === this.lastSentLsn && now - this.lastSentAt < KEEPALIVE_MAX_SILENCE_MS)
      return;
    if (lsn < this.lastSentLsn)
      throw new Error(
        `confirmed LSN would move backwards (${formatLsn(lsn)} < ${formatLsn(this.lastSentLsn)})`,
      );
    try {
      if (!this.o.send(lsn)) return;
      this.lastSentLsn = lsn;
      this.lastSentAt = now;
      this.o.metrics?.confirmedLsn.set(Number(lsn));
    } catch (err) {
      this.o.logger.warn({ err: (err as Error).message }, 'could not send status update');
    }
  }

  /** The last update at shutdown: only when the watermark moved since the last one sent. */
  final(): void {
    const lsn = this.o.confirmed();
    if (lsn <= this.lastSentLsn) return;
    try {
      if (this.o.send(lsn)) this.lastSentLsn = lsn;
    } catch {
      /* connection already gone */
    }
  }
}
