import { randomBytes } from 'node:crypto';
import { ident, type Db } from '../../state/db.ts';

/**
 * `--snapshot-mode initial|initial_only` made crash-safe (docs/backfill.md). Creating the slot and
 * queueing its initial backfill cannot be one transaction (a slot is not transactional), so a marker
 * is written before the slot is created and cleared once the backfill is queued: a daemon that dies in
 * between finds "slot there, marker still there" at its next start and queues it then. The backfill's
 * id comes from the marker's token, so queueing it twice (a death between queueing and clearing)
 * makes it once.
 */

/** Before the slot is created: marks that this slot's initial backfill is owed (only if the slot is missing). */
export async function oweInitialBackfill(db: Db, stateSchema: string, slot: string): Promise<void> {
  await db.query(
    `INSERT INTO ${ident(stateSchema)}.initial_snapshots (slot, token)
     SELECT $1::text, $2::text
      WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name::text = $1::text)
     ON CONFLICT (slot) DO NOTHING`,
    [slot, randomBytes(6).toString('hex')],
  );
}

/** The id the owed initial backfill gets, when the slot exists and its initial backfill is still owed. */
export async function owedInitialBackfill(db: Db, stateSchema: string, slot: string): Promise<string | null> {
  const { rows } = await db.query<{ token: string }>(
    `SELECT i.token FROM ${ident(stateSchema)}.initial_snapshots i
      WHERE i.slot = $1::text AND EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name::text = $1::text)`,
    [slot],
  );
  return rows[0] ? `bf_init_${rows[0].token}` : null;
}

/** The initial backfill is queued (or was not wanted after all). */
export async function initialBackfillQueued(db: Db, stateSchema: string, slot: string): Promise<void> {
  await db.query(`DELETE FROM ${ident(stateSchema)}.initial_snapshots WHERE slot = $1`, [slot]);
}
