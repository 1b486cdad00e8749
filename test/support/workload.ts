import pg from 'pg';

/** A steady mixed workload (inserts, updates, deletes in multi-row transactions) on two tables. */
export async function setupWorkloadTables(url: string): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query(`
    CREATE TABLE IF NOT EXISTS wl_a (id bigserial PRIMARY KEY, n int NOT NULL, note text);
    CREATE TABLE IF NOT EXISTS wl_b (id bigserial PRIMARY KEY, a_id bigint, v numeric(12,3), payload jsonb);
  `);
  await c.end();
}

export interface Workload {
  stop(): Promise<number>;
  transactions(): number;
}

export function startWorkload(
  url: string,
  opts: { rowsPerTx?: number; pauseMs?: number; maxTx?: number } = {},
): Workload {
  const rows = opts.rowsPerTx ?? 5;
  let running = true;
  let txs = 0;
  const done = loop();
  // After a lost connection a fresh client is needed: pg.Client cannot reconnect.
  async function loop(): Promise<void> {
    while (running && (opts.maxTx === undefined || txs < opts.maxTx)) {
      const c = new pg.Client({ connectionString: url });
      c.on('error', () => undefined);
      try {
        await c.connect();
        for (;;) {
          if (!running || (opts.maxTx !== undefined && txs >= opts.maxTx)) break;
          await c.query('BEGIN');
          const ids = await c.query<{ id: string }>(
            `INSERT INTO wl_a (n, note) SELECT g, md5(random()::text) FROM generate_series(1, $1) g RETURNING id`,
            [rows],
          );
          const first = ids.rows[0]!.id;
          await c.query(`INSERT INTO wl_b (a_id, v, payload) VALUES ($1, 123.456, '{"k": [1, 2]}')`, [first]);
          await c.query(`UPDATE wl_a SET n = n + 1 WHERE id = $1`, [first]);
          await c.query('COMMIT');
          txs++;
          if (opts.pauseMs) await new Promise((r) => setTimeout(r, opts.pauseMs));
        }
        await c.end().catch(() => undefined);
        return;
      } catch {
        await c.end().catch(() => undefined);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }
  return {
    stop: async () => {
      running = false;
      await done;
      return txs;
    },
    transactions: () => txs,
  };
}
