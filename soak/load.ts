import pg from 'pg';
import type { prng } from './schedule.ts';

/**
 * The soak's write load on two tracked tables, straight to PostgreSQL (never through a fault proxy):
 * small transactions mixing inserts, updates and deletes at a bounded rate, and now and then a large
 * one (thousands of rows: streamed through the daemon, never held whole). Survives server restarts.
 */
export async function setupLoadTables(url: string): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(`
      CREATE TABLE IF NOT EXISTS soak_a (id bigserial PRIMARY KEY, n int NOT NULL, note text);
      CREATE TABLE IF NOT EXISTS soak_b (id bigserial PRIMARY KEY, a_id bigint, v numeric(12,3), payload jsonb);
    `);
  } finally {
    await c.end();
  }
}

export const LOAD_TABLES = new Set(['public.soak_a', 'public.soak_b']);

export interface LoadOptions {
  /** Small transactions per second. */
  txPerSecond: number;
  /** Seconds between large transactions (on average). */
  largeEverySeconds: number;
  largeRows: number;
  rnd: ReturnType<typeof prng>;
}

export interface LoadStats {
  transactions: number;
  large: number;
  failed: number;
}

export class Load {
  readonly stats: LoadStats = { transactions: 0, large: 0, failed: 0 };
  private running = false;
  private done?: Promise<void>;
  private maxId = 0;

  private readonly url: string;
  private readonly o: LoadOptions;

  constructor(url: string, o: LoadOptions) {
    this.url = url;
    this.o = o;
  }

  start(): void {
    this.running = true;
    this.done = this.loop();
  }

  async stop(): Promise<LoadStats> {
    this.running = false;
    await this.done;
    return this.stats;
  }

  private async loop(): Promise<void> {
    const pause = 1000 / this.o.txPerSecond;
    let nextLarge = Date.now() + this.largeGap();
    while (this.running) {
      const c = new pg.Client({ connectionString: this.url });
      c.on('error', () => undefined);
      try {
        await c.connect();
        while (this.running) {
          const t0 = Date.now();
          if (t0 >= nextLarge) {
            await this.large(c);
            nextLarge = Date.now() + this.largeGap();
          } else {
            await this.small(c);
          }
          const wait = pause - (Date.now() - t0);
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        }
      } catch {
        // a restart or a lost connection: the open transaction (if any) rolled back; a new client
        this.stats.failed++;
        await new Promise((r) => setTimeout(r, 250));
      } finally {
        await c.end().catch(() => undefined);
      }
    }
  }

  private largeGap(): number {
    return (0.5 + this.o.rnd()) * this.o.largeEverySeconds * 1000;
  }

  private async small(c: pg.Client): Promise<void> {
    const rnd = this.o.rnd;
    await c.query('BEGIN');
    const rows = 1 + Math.floor(rnd() * 5);
    const ids = await c.query<{ id: string }>(
      `INSERT INTO soak_a (n, note) SELECT g, md5(random()::text) FROM generate_series(1, $1) g RETURNING id`,
      [rows],
    );
    const last = Number(ids.rows[ids.rows.length - 1]!.id);
    this.maxId = Math.max(this.maxId, last);
    await c.query(`INSERT INTO soak_b (a_id, v, payload) VALUES ($1, $2, $3)`, [
      last,
      (rnd() * 1e6).toFixed(3),
      JSON.stringify({ k: [1, 2], r: rnd() }),
    ]);
    const pick = () => 1 + Math.floor(rnd() * this.maxId);
    if (rnd() < 0.7) await c.query(`UPDATE soak_a SET n = n + 1 WHERE id = $1`, [pick()]);
    if (rnd() < 0.3) {
      const from = pick();
      await c.query(`UPDATE soak_a SET note = 'moved' WHERE id BETWEEN $1 AND $1 + 3`, [from]);
    }
    if (rnd() < 0.3) await c.query(`DELETE FROM soak_a WHERE id = $1`, [pick()]);
    if (rnd() < 0.1) await c.query(`DELETE FROM soak_b WHERE id IN (SELECT id FROM soak_b LIMIT 2)`);
    await c.query('COMMIT');
    this.stats.transactions++;
  }

  private async large(c: pg.Client): Promise<void> {
    await c.query('BEGIN');
    const ids = await c.query<{ first: string; last: string }>(
      `WITH ins AS (INSERT INTO soak_a (n, note) SELECT g, repeat('x', 200) FROM generate_series(1, $1) g RETURNING id)
       SELECT min(id)::text AS first, max(id)::text AS last FROM ins`,
      [this.o.largeRows],
    );
    const { first, last } = ids.rows[0]!;
    await c.query(`UPDATE soak_a SET n = -n WHERE id BETWEEN $1 AND $2 AND id % 3 = 0`, [first, last]);
    await c.query(`DELETE FROM soak_a WHERE id BETWEEN $1 AND $2 AND id % 5 = 0`, [first, last]);
    await c.query('COMMIT');
    this.maxId = Math.max(this.maxId, Number(last));
    this.stats.transactions++;
    this.stats.large++;
  }
}
