// One short-lived connection per call: the bench issues few, slow statements.
import { sql } from '../../test/support/db.ts';
export { sql };

export async function createSlots(
  url: string,
  slots: string[],
  plugin: 'wal2json' | 'pgoutput' = 'wal2json',
): Promise<void> {
  for (const s of slots) await sql(url, `SELECT pg_create_logical_replication_slot($1, $2)`, [s, plugin]);
}

export async function dropSlot(url: string, slot: string): Promise<void> {
  await sql(
    url,
    `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL`,
    [slot],
  ).catch(() => undefined);
  for (let i = 0; i < 50; i++) {
    try {
      await sql(url, `SELECT pg_drop_replication_slot($1) FROM pg_replication_slots WHERE slot_name = $1`, [
        slot,
      ]);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100)); // still active for a moment after terminate
    }
  }
}

export async function currentLsn(url: string): Promise<string> {
  const [r] = await sql<{ lsn: string }>(url, 'SELECT pg_current_wal_lsn()::text AS lsn');
  return r!.lsn;
}

/** The walsender serving a slot (its CPU is PostgreSQL's wal2json decoding). */
export async function slotPid(url: string, slot: string, timeoutMs = 10_000): Promise<number | undefined> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const [r] = await sql<{ pid: number | null }>(
      url,
      'SELECT active_pid AS pid FROM pg_replication_slots WHERE slot_name = $1',
      [slot],
    );
    if (r?.pid) return r.pid;
    await new Promise((r) => setTimeout(r, 20));
  }
  return undefined;
}
