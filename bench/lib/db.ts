import pg from 'pg';

// One short-lived connection per call: the bench issues few, slow statements.
import { sql } from '../../test/support/db.ts';
export { sql };

export async function createSlots(url: string, slots: string[]): Promise<void> {
  for (const s of slots) await sql(url, `SELECT pg_create_logical_replication_slot($1, 'wal2json')`, [s]);
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

/** The catch-up table: a few typical columns (int8 key, int, text, numeric, timestamptz). */
export async function createBacklogTable(url: string, table: string): Promise<void> {
  await sql(
    url,
    `CREATE TABLE ${table} (id bigint PRIMARY KEY, n int NOT NULL, label text NOT NULL,
       amount numeric(12,2), updated_at timestamptz NOT NULL DEFAULT now())`,
  );
}

/**
 * `changes` row changes in `txSize`-row transactions: an INSERT transaction of txSize new rows, then
 * an UPDATE transaction of those same rows, and so on (so half inserts, half updates).
 */
export async function loadBacklog(
  url: string,
  table: string,
  changes: number,
  txSize: number,
): Promise<{ transactions: number; changes: number }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  let done = 0;
  let txs = 0;
  let base = 1;
  try {
    while (done < changes) {
      const size = Math.min(txSize, changes - done);
      if (txs % 2 === 0) {
        await client.query(
          `INSERT INTO ${table} (id, n, label, amount)
           SELECT g, g % 1000, 'row ' || g || ' ' || md5(g::text), (g % 100000) / 100.0
             FROM generate_series($1::bigint, $2::bigint) g`,
          [base, base + size - 1],
        );
      } else {
        await client.query(`UPDATE ${table} SET n = n + 1, updated_at = now() WHERE id BETWEEN $1 AND $2`, [
          base,
          base + size - 1,
        ]);
        base += txSize;
      }
      done += size;
      txs++;
    }
  } finally {
    await client.end();
  }
  return { transactions: txs, changes: done };
}
