/**
 * Whether a Snapshot may take a wal sender and a (temporary) replication slot now. Pure: it decides
 * from counts read in one query (HEADROOM_SQL). One wal sender always stays free, so the daemon can
 * reconnect its stream whatever Snapshot clients do; and if the daemon's own slot does not exist yet,
 * one slot stays free for it too.
 */

export const HEADROOM_SQL = `SELECT current_setting('max_wal_senders')::int AS max_wal_senders,
  (SELECT count(*)::int FROM pg_stat_activity WHERE backend_type = 'walsender') AS wal_senders,
  current_setting('max_replication_slots')::int AS max_slots,
  (SELECT count(*)::int FROM pg_replication_slots) AS slots,
  EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1) AS own_slot`;

export interface Headroom {
  max_wal_senders: number;
  wal_senders: number;
  max_slots: number;
  slots: number;
  own_slot: boolean;
}

export function snapshotVerdict(h: Headroom): { ok: true } | { ok: false; reason: string } {
  // Ours, plus the one kept for the daemon's reconnect.
  if (h.wal_senders + 2 > h.max_wal_senders)
    return {
      ok: false,
      reason:
        `${h.wal_senders} of max_wal_senders = ${h.max_wal_senders} are in use; a Snapshot never takes ` +
        'the last free one (the daemon needs it to reconnect). Retry later, or raise max_wal_senders',
    };
  const slotsNeeded = 1 + (h.own_slot ? 0 : 1);
  if (h.slots + slotsNeeded > h.max_slots)
    return {
      ok: false,
      reason:
        `${h.slots} of max_replication_slots = ${h.max_slots} are in use; a Snapshot never takes the ` +
        "slot the daemon's own stream needs. Retry later, or raise max_replication_slots",
    };
  return { ok: true };
}
