import { randomUUID } from 'node:crypto';
import { ident, type Db } from '../../state/db.ts';

/**
 * A slot's incarnation: which life of a slot of that name this is. A dropped and recreated slot is a
 * new stream (its positions restart at the WAL position of its creation, and whatever the old one had
 * not confirmed is gone), so checkpoints of the old life must not be trusted by the new one.
 *
 * Why an id of ours: PostgreSQL keeps nothing we could read back that names a slot's life.
 * pg_replication_slots has no creation time or id (up to 18), and its LSNs and xmins move on, so a
 * slot recreated later looks just like the old one having advanced. So the id is minted when we create
 * the slot (`recordCreated`, right after pg_create_logical_replication_slot) and kept in
 * `<state schema>.slot_incarnations`. A slot somebody else created is adopted: it gets an id the first
 * time we see it. `tag-connector slot drop` deletes the record with the slot.
 *
 * What it cannot see: a slot dropped and recreated by hand (pg_drop_replication_slot and
 * pg_create_logical_replication_slot, bypassing us) between two runs keeps the old record; there the
 * check that a checkpoint is not ahead of the server's WAL is the remaining guard. A replaced cluster
 * is caught by its system identifier in any case.
 */
export async function recordSlotCreated(db: Db, stateSchema: string, slot: string): Promise<string> {
  const incarnation = randomUUID();
  await db.query(
    `INSERT INTO ${ident(stateSchema)}.slot_incarnations (slot_name, incarnation, how) VALUES ($1, $2, 'created')
     ON CONFLICT (slot_name) DO UPDATE SET incarnation = EXCLUDED.incarnation, how = 'created', recorded_at = now()`,
    [slot, incarnation],
  );
  return incarnation;
}

/** The incarnation recorded for an existing slot, adopting it (a new id) when there is none. */
export async function slotIncarnation(db: Db, stateSchema: string, slot: string): Promise<string> {
  const t = `${ident(stateSchema)}.slot_incarnations`;
  await db.query(
    `INSERT INTO ${t} (slot_name, incarnation, how) VALUES ($1, $2, 'adopted') ON CONFLICT (slot_name) DO NOTHING`,
    [slot, randomUUID()],
  );
  const { rows } = await db.query<{ incarnation: string }>(
    `SELECT incarnation FROM ${t} WHERE slot_name = $1`,
    [slot],
  );
  return rows[0]!.incarnation;
}
