/** @services pg pubsub */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { PubSub } from '@google-cloud/pubsub';
import { randomUUID } from 'node:crypto';
import { apiUrl, backfillState, fold, startChurn, tableRows, waitUntil } from '../support/backfill.ts';
import { runCli, waitStreaming, type Daemon } from '../support/daemon.ts';
import { sql, testDatabase } from '../support/db.ts';
import { Collector } from '../support/pubsub-read.ts';
import { requireService } from '../support/require-service.ts';

/**
 * A backfill into Pub/Sub (pstest, Google's own fake), SIGKILLed under concurrent writes: at least
 * once with stable ids, so after dropping repeated ids (in arrival order; one ordering key per row
 * keeps each row's events in order) the fold by key equals the table, and every read id is one row.
 */

const ROWS = 6000;
const PROJECT = 'tagc-backfill';
requireService('pubsub'); // the daemon and the client reach pstest through PUBSUB_EMULATOR_HOST

describe('backfill --plugin pgoutput into Pub/Sub (pstest)', () => {
  let db: { url: string; drop: () => Promise<void> };
  let d: Daemon | undefined;
  let collector: Collector | undefined;
  const topic = `bf-${randomUUID().slice(0, 8)}`;
  const args = () => [
    'extract-tasks',
    '--plugin',
    'pgoutput',
    '--pg-url',
    db.url,
    '--slot',
    'bfp_slot',
    '--sink',
    'pubsub',
    '--project-id',
    PROJECT,
    '--topic',
    topic,
    '--serverPort',
    '0',
    '--backfill-chunk-size',
    '200',
    '--stream-retention-bytes',
    '0',
    '--preset',
    'none',
  ];

  beforeAll(async () => {
    db = await testDatabase('bfp');
    await sql(db.url, `CREATE TABLE public.bf_items (id serial PRIMARY KEY, v int NOT NULL, note text)`);
    await sql(
      db.url,
      `INSERT INTO public.bf_items (v, note) SELECT g, md5(g::text) FROM generate_series(1, ${ROWS}) g`,
    );
    await sql(db.url, `CREATE TABLE public.bf_marker (id serial PRIMARY KEY)`);
    const ps = new PubSub({ projectId: PROJECT });
    await ps.createTopic(topic);
    await ps.close();
    collector = await new Collector(PROJECT).subscribe(topic);
  });
  afterAll(async () => {
    await d?.kill('SIGKILL');
    await collector?.close();
    await db.drop();
  });

  it('folds to the table after a SIGKILL mid-backfill, every read id once after dedupe', async () => {
    d = runCli(args());
    await waitStreaming(d, 60_000);
    const res = await fetch(`${await apiUrl(d)}/v1/api/backfills`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ tables: ['public.bf_items'] }),
    });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    const churn = startChurn(db.url, 'public.bf_items', ROWS + 500);
    await waitUntil('10 chunks', async () => (await backfillState(db.url, id)).chunks >= 10);
    await d.kill('SIGKILL');
    d = runCli(args());
    await waitStreaming(d, 60_000);
    await waitUntil(
      'the backfill done',
      async () => (await backfillState(db.url, id)).state === 'done',
      180_000,
    );
    const writes = await churn.stop();
    expect(writes).toBeGreaterThan(50);
    const [m] = await sql<{ id: number }>(db.url, `INSERT INTO public.bf_marker DEFAULT VALUES RETURNING id`);

    type Event = { id: string; data: { op: string; table: string; after: { id: number } | null } };
    let events: Event[] = [];
    // Pub/Sub orders per ordering key only (16 buckets): the marker may come before another bucket's
    // last events, so the read ends when the marker is in and nothing new came for 3 s.
    let lastCount = -1;
    let stableSince = Date.now();
    await waitUntil(
      'the marker in Pub/Sub and the subscription quiet',
      async () => {
        const count = collector!.received.length;
        if (count !== lastCount) [lastCount, stableSince] = [count, Date.now()];
        if (Date.now() - stableSince < 3000) return false;
        const seen = new Set<string>();
        events = [];
        for (const msg of collector!.received) {
          const e = JSON.parse(msg.data) as Event;
          if (seen.has(e.id)) continue; // at least once: a repeat has the same id
          seen.add(e.id);
          events.push(e);
        }
        return events.some((e) => e.data.table === 'bf_marker' && e.data.after?.id === m!.id);
      },
      180_000,
    );
    const reads = events.filter((e) => e.data.op === 'r');
    expect(reads.length).toBeGreaterThan(ROWS / 2);
    // No row read twice under two ids: a chunk replayed after the SIGKILL kept its ids.
    const readKeys = reads.map((e) => e.data.after!.id);
    expect(readKeys.length).toBe(new Set(readKeys).size);
    const folded = fold(events as unknown as Record<string, unknown>[], 'bf_items');
    const table = await tableRows(db.url, 'public.bf_items');
    expect(folded.size).toBe(table.size);
    const diff = [...table].filter(([k, row]) => JSON.stringify(folded.get(k)) !== JSON.stringify(row));
    expect(diff.slice(0, 5)).toEqual([]);
    const exit = await d.kill('SIGTERM');
    expect(exit.code).toBe(0);
  }, 360_000);
});
