import pg from 'pg';
import { sql } from './db.ts';

/**
 * The catch-up's workloads: what table the backlog is written to and how. Every bench run measures
 * both, each against its own bare reader.
 */
export interface Workload {
  name: 'narrow' | 'wide';
  table: string;
  /** What the report says about it. */
  description: string;
  create(url: string): Promise<void>;
  /** Writes `changes` row changes in `txSize`-row transactions. */
  load(url: string, changes: number, txSize: number): Promise<{ transactions: number; changes: number }>;
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/**
 * Five typical columns (int8 key, int, text, numeric, timestamptz), REPLICA IDENTITY DEFAULT: an
 * INSERT transaction of txSize new rows, then an UPDATE of those same rows, and so on (half inserts,
 * half updates; each update changes two columns).
 */
export const NARROW: Workload = {
  name: 'narrow',
  table: 'public.bench_rows',
  description: '5 columns, identity default; insert 2,000 rows, update them, repeat',
  async create(url) {
    await sql(
      url,
      `CREATE TABLE public.bench_rows (id bigint PRIMARY KEY, n int NOT NULL, label text NOT NULL,
         amount numeric(12,2), updated_at timestamptz NOT NULL DEFAULT now())`,
    );
  },
  load: (url, changes, txSize) =>
    withClient(url, async (client) => {
      let done = 0;
      let txs = 0;
      let base = 1;
      while (done < changes) {
        const size = Math.min(txSize, changes - done);
        if (txs % 2 === 0) {
          await client.query(
            `INSERT INTO public.bench_rows (id, n, label, amount)
             SELECT g, g % 1000, 'row ' || g || ' ' || md5(g::text), (g % 100000) / 100.0
               FROM generate_series($1::bigint, $2::bigint) g`,
            [base, base + size - 1],
          );
        } else {
          await client.query(
            `UPDATE public.bench_rows SET n = n + 1, updated_at = now() WHERE id BETWEEN $1 AND $2`,
            [base, base + size - 1],
          );
          base += txSize;
        }
        done += size;
        txs++;
      }
      return { transactions: txs, changes: done };
    }),
};

/**
 * A task table as real ones look (issue 22): 13 columns (int8 key, int, text, jsonb of ~300 B, text[],
 * numeric, bytea, two timestamptz, a mostly-NULL text, a half-NULL int8, a float with NULLs, and a
 * ~1.9 KB text stored out of line: STORAGE EXTERNAL, so TOASTed uncompressed), REPLICA IDENTITY FULL
 * (every update and delete carries the whole old row, the TOASTed text included). The backlog: two
 * thirds inserts in txSize-row transactions, then updates of half of those rows (every other id), in
 * txSize-row transactions; each update changes two columns: the status and, mostly, `updated_at`
 * (one in 100 rewrites the TOASTed text instead, so most updates leave it unchanged).
 */
export const WIDE: Workload = {
  name: 'wide',
  table: 'public.bench_wide',
  description:
    '13 columns (jsonb ~300 B, text[], numeric, bytea, timestamptz, NULLs, 1.9 KB TOASTed text), identity full; inserts, then updates of half of the rows',
  async create(url) {
    await sql(
      url,
      `CREATE TABLE public.bench_wide (
         id bigint PRIMARY KEY,
         tenant_id int NOT NULL,
         status text NOT NULL,
         payload jsonb NOT NULL,
         tags text[] NOT NULL,
         amount numeric(14,4),
         checksum bytea,
         created_at timestamptz NOT NULL DEFAULT now(),
         updated_at timestamptz NOT NULL DEFAULT now(),
         note text,
         parent_id bigint,
         score double precision,
         body text NOT NULL)`,
    );
    await sql(url, `ALTER TABLE public.bench_wide ALTER COLUMN body SET STORAGE EXTERNAL`);
    await sql(url, `ALTER TABLE public.bench_wide REPLICA IDENTITY FULL`);
  },
  load: (url, changes, txSize) =>
    withClient(url, async (client) => {
      const inserts = Math.ceil((changes * 2) / 3 / txSize) * txSize;
      const updates = changes - Math.min(inserts, changes);
      let done = 0;
      let txs = 0;
      for (let base = 1; base <= inserts && done < changes; base += txSize) {
        const size = Math.min(txSize, changes - done);
        await client.query(
          `INSERT INTO public.bench_wide (id, tenant_id, status, payload, tags, amount, checksum, note,
                                          parent_id, score, body)
           SELECT g, g % 97, 'queued',
                  jsonb_build_object(
                    'task', 'sync-' || g, 'attempt', 0, 'queue', 'harvest',
                    'source', jsonb_build_object('kind', 'graphql',
                                                 'url', 'https://example.org/api/v1/items/' || g),
                    'labels', jsonb_build_array('alpha', 'beta', 'gamma'),
                    'owner', md5(g::text),
                    'limits', jsonb_build_object('cpu', 2, 'memoryMb', 512, 'timeoutS', 300),
                    'comment', 'a "quoted" word, an é and a tab	here'),
                  ARRAY['tag-' || (g % 7), 'tag-' || (g % 11), 'team "a"'],
                  (g % 1000000) / 100.0 + 0.0001,
                  decode(md5(g::text), 'hex'),
                  CASE WHEN g % 3 = 0 THEN 'note ' || g END,
                  CASE WHEN g % 2 = 0 THEN g - 1 END,
                  CASE WHEN g % 5 <> 0 THEN g / 7.0 END,
                  repeat(md5(g::text), 60)
             FROM generate_series($1::bigint, $2::bigint) g`,
          [base, base + size - 1],
        );
        done += size;
        txs++;
      }
      // every other row, txSize rows per transaction
      for (let base = 2; done < changes && updates > 0; base += txSize * 2) {
        const size = Math.min(txSize, changes - done);
        await client.query(
          `UPDATE public.bench_wide
              SET status = 'running',
                  updated_at = CASE WHEN id % 100 = 0 THEN updated_at ELSE now() END,
                  body = CASE WHEN id % 100 = 0 THEN body || 'x' ELSE body END
            WHERE id BETWEEN $1 AND $2 AND id % 2 = 0`,
          [base, base + size * 2 - 2],
        );
        done += size;
        txs++;
      }
      return { transactions: txs, changes: done };
    }),
};

export const WORKLOADS: Record<string, Workload> = { narrow: NARROW, wide: WIDE };
