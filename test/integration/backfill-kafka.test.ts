import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { decodeMessage } from '../../src/sinks/encode.ts';
import { apiUrl, backfillState, startChurn, tableRows, waitUntil } from '../support/backfill.ts';
import { runCli, waitStreaming, type Daemon } from '../support/daemon.ts';
import { sql, testDatabase } from '../support/db.ts';
import { readCommitted } from '../support/kafka-read.ts';

/**
 * A backfill into Kafka with exactly-once transactions (the default), SIGKILLed twice under
 * concurrent writes: a read_committed consumer sees every read once, and folding each key's events
 * in offset order gives the table.
 */

const ROWS = 10_000;

function brokers(): string {
  const b = process.env.KAFKA_BROKERS;
  if (!b) throw new Error('KAFKA_BROKERS is not set: run with TEST_SERVICES=pg,kafka');
  return b;
}

describe.each(['wal2json', 'pgoutput'])('backfill --plugin %s into Kafka (read_committed)', (plugin) => {
  let db: { url: string; drop: () => Promise<void> };
  let d: Daemon | undefined;
  const topic = `bf-${plugin}-${randomUUID().slice(0, 8)}`;
  const args = () => [
    'extract-tasks',
    '--plugin',
    plugin,
    '--pg-url',
    db.url,
    '--slot',
    'bfk_slot',
    '--sink',
    'kafka',
    '--kafka-brokers',
    brokers(),
    '--kafka-replication-factor',
    '1',
    '--topic',
    topic,
    '--kafka-checkpoint-topic',
    `${topic}-cp`,
    '--serverPort',
    '0',
    '--backfill-chunk-size',
    '250',
    '--stream-retention-bytes',
    '0',
    '--preset',
    'none',
  ];

  beforeAll(async () => {
    db = await testDatabase(`bfk_${plugin}`);
    await sql(db.url, `CREATE TABLE public.bf_items (id serial PRIMARY KEY, v int NOT NULL, note text)`);
    await sql(
      db.url,
      `INSERT INTO public.bf_items (v, note) SELECT g, md5(g::text) FROM generate_series(1, ${ROWS}) g`,
    );
    await sql(db.url, `CREATE TABLE public.bf_marker (id serial PRIMARY KEY)`);
  });
  afterAll(async () => {
    await d?.kill('SIGKILL');
    await db.drop();
  });

  it('sees each read once and folds to the table after two SIGKILLs', async () => {
    d = runCli(args());
    await waitStreaming(d, 60_000);
    const res = await fetch(`${await apiUrl(d)}/v1/api/backfills`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ tables: ['public.bf_items'] }),
    });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    const churn = startChurn(db.url, 'public.bf_items', ROWS + 1000);
    for (const atChunks of [8, 24]) {
      await waitUntil(`${atChunks} chunks`, async () => (await backfillState(db.url, id)).chunks >= atChunks);
      await d.kill('SIGKILL');
      d = runCli(args());
      await waitStreaming(d, 60_000);
    }
    await waitUntil(
      'the backfill done',
      async () => (await backfillState(db.url, id)).state === 'done',
      180_000,
    );
    await churn.stop();
    const [m] = await sql<{ id: number }>(db.url, `INSERT INTO public.bf_marker DEFAULT VALUES RETURNING id`);

    let events: { id: string; type: string; data: Record<string, unknown> }[] = [];
    await waitUntil(
      'the marker in Kafka',
      async () => {
        // Our own read_committed Fetch loop: it drops the records of aborted transactions (a
        // SIGKILL leaves one open, aborted at the next start); the client library's consumer misses
        // some of them (src/sinks/kafka/reader.ts).
        const msgs = await readCommitted(brokers(), topic, { quietMs: 2000 });
        events = msgs.map((x) => decodeMessage(x.headers, x.value) as unknown as (typeof events)[number]);
        return events.some(
          (e) => e.data.table === 'bf_marker' && (e.data.after as { id: number }).id === m!.id,
        );
      },
      180_000,
    );
    const ids = events.map((e) => e.id);
    expect(ids.length - new Set(ids).size).toBe(0);
    const reads = events.filter((e) => e.data.op === 'r');
    expect(reads.length).toBeGreaterThan(ROWS / 2);

    // Each key's events sit in one partition in commit order: readCommitted returns them in offset order
    // per partition, so a per-key fold in arrival order is the fold in delivery order.
    const folded = new Map<string, Record<string, unknown>>();
    for (const e of events) {
      const data = e.data as {
        op: string;
        table: string;
        before: { id: number } | null;
        after: { id: number } | null;
      };
      if (data.table !== 'bf_items') continue;
      if (data.op === 'd') folded.delete(String(data.before!.id));
      else folded.set(String(data.after!.id), data.after!);
    }
    const table = await tableRows(db.url, 'public.bf_items');
    expect(folded.size).toBe(table.size);
    const diff = [...table].filter(([k, row]) => JSON.stringify(folded.get(k)) !== JSON.stringify(row));
    expect(diff.slice(0, 5)).toEqual([]);
    const exit = await d.kill('SIGTERM');
    expect(exit.code).toBe(0);
  }, 420_000);
});
