import pg from 'pg';
import type { Daemon } from './daemon.ts';
import { sql } from './db.ts';

/** The daemon's API URL, from its "HTTP API listening" log line. */
export async function apiUrl(d: Daemon, timeoutMs = 30_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const line = d
      .stderr()
      .split('\n')
      .find((l) => l.includes('"msg":"HTTP API listening"'));
    const m = line ? /"url":"(http:\/\/[^"]+)"/.exec(line) : null;
    if (m) return m[1]!;
    if (d.proc.exitCode !== null)
      throw new Error(`daemon exited ${d.proc.exitCode}: ${d.stderr().slice(-2000)}`);
    if (Date.now() > deadline) throw new Error(`no API URL: ${d.stderr().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** `id` → row, folded from events in delivery order: reads, inserts and updates set, deletes remove. */
export function fold(events: Record<string, unknown>[], table: string): Map<string, Record<string, unknown>> {
  const rows = new Map<string, Record<string, unknown>>();
  for (const e of events) {
    const d = e.data as {
      op: string;
      table: string;
      before: Record<string, unknown> | null;
      after: Record<string, unknown> | null;
    };
    if (!d || d.table !== table) continue;
    if (d.op === 'd') rows.delete(String(d.before!.id));
    else if (d.op === 'u' && d.before && String(d.before.id) !== String(d.after!.id)) {
      rows.delete(String(d.before.id));
      rows.set(String(d.after!.id), d.after!);
    } else rows.set(String(d.after!.id), d.after!);
  }
  return rows;
}

export async function tableRows(url: string, table: string): Promise<Map<string, Record<string, unknown>>> {
  const rows = await sql(url, `SELECT * FROM ${table} ORDER BY id`);
  return new Map(rows.map((r) => [String(r.id), r]));
}

/** Random inserts, updates and deletes on `table (id serial, v int, note text)` until stopped. */
export function startChurn(url: string, table: string, maxId: number): { stop: () => Promise<number> } {
  let stopped = false;
  let n = 0;
  const done = (async () => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      while (!stopped) {
        const id = 1 + Math.floor(Math.random() * maxId);
        const r = Math.random();
        if (r < 0.45)
          await c.query(`UPDATE ${table} SET v = v + 1, note = md5(random()::text) WHERE id = $1`, [id]);
        else if (r < 0.7) await c.query(`DELETE FROM ${table} WHERE id = $1`, [id]);
        else await c.query(`INSERT INTO ${table} (v, note) VALUES ($1, 'new')`, [id]);
        n++;
        if (n % 20 === 0) await new Promise((res) => setTimeout(res, 5));
      }
    } finally {
      await c.end();
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await done;
      return n;
    },
  };
}

export async function backfillState(url: string, id: string): Promise<{ state: string; chunks: number }> {
  const rows = await sql<{ state: string; chunks: number }>(
    url,
    `SELECT b.state, coalesce(sum(t.chunks), 0)::int AS chunks FROM tag_connector.backfills b
       LEFT JOIN tag_connector.backfill_tables t ON t.backfill_id = b.id WHERE b.id = $1 GROUP BY b.state`,
    [id],
  );
  return rows[0] ?? { state: 'missing', chunks: 0 };
}

export async function waitUntil(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 90_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
