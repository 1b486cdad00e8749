import type { Logger } from '../../log.ts';
import type { Metrics } from '../../metrics.ts';
import { errors } from '../../errors.ts';
import type { Db } from '../../state/db.ts';

export interface SlotHealth {
  lagBytes: number | null;
  walStatus: string | null;
  safeWalSize: number | null;
}

/** Pure: what a slot reading means. */
export function assessSlot(
  h: SlotHealth | null,
  lagWarnBytes: number,
): 'ok' | 'lagging' | 'invalidated' | 'missing' {
  if (!h) return 'missing';
  if (h.walStatus === 'lost') return 'invalidated';
  if ((h.lagBytes ?? 0) > lagWarnBytes || h.walStatus === 'unreserved') return 'lagging';
  return 'ok';
}

/**
 * Watches slot lag, wal_status and safe_wal_size (metrics + warnings); an invalidated or vanished slot
 * stops the daemon with the recovery steps instead of silently recreating it.
 */
export function startSlotMonitor(opts: {
  db: Db;
  slot: string;
  lagWarnBytes: number;
  logger: Logger;
  metrics: Metrics;
  onFatal: (err: Error) => void;
  /** Each successful reading (the console's lag chart keeps them). */
  onReading?: (h: SlotHealth) => void;
  intervalMs?: number;
}): () => void {
  let warned = false;
  const check = async () => {
    try {
      const { rows } = await opts.db.query<{
        lag: string | null;
        wal_status: string | null;
        safe: string | null;
      }>(
        `SELECT (pg_current_wal_lsn() - confirmed_flush_lsn)::text AS lag, wal_status, safe_wal_size::text AS safe
           FROM pg_replication_slots WHERE slot_name = $1`,
        [opts.slot],
      );
      const r = rows[0];
      const h: SlotHealth | null = r
        ? {
            lagBytes: r.lag === null ? null : Number(r.lag),
            walStatus: r.wal_status,
            safeWalSize: r.safe === null ? null : Number(r.safe),
          }
        : null;
      if (h?.lagBytes != null) opts.metrics.lagBytes.set(h.lagBytes);
      if (h) opts.onReading?.(h);
      opts.metrics.safeWalBytes.set(h?.safeWalSize ?? -1);
      const verdict = assessSlot(h, opts.lagWarnBytes);
      opts.metrics.lagWarning.set(verdict === 'lagging' ? 1 : 0);
      if (verdict === 'invalidated') opts.onFatal(errors.slotInvalidated(opts.slot, h!.walStatus ?? 'lost'));
      else if (verdict === 'missing') opts.onFatal(errors.slotLost(opts.slot));
      else if (verdict === 'lagging' && !warned) {
        warned = true;
        opts.logger.warn(
          { slot: opts.slot, ...h },
          'replication slot lag above --lag-warn-bytes: WAL is piling up on the server',
        );
      } else if (verdict === 'ok') warned = false;
    } catch (err) {
      opts.logger.debug({ err: (err as Error).message }, 'slot monitor: query failed');
    }
  };
  const timer = setInterval(() => void check(), opts.intervalMs ?? 10_000);
  timer.unref();
  void check();
  return () => clearInterval(timer);
}
