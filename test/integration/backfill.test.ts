import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { apiUrl, backfillState, fold, startChurn, tableRows, waitUntil } from '../support/backfill.ts';
import { runCli, waitStreaming, type Daemon } from '../support/daemon.ts';
import { sql, testDatabase } from '../support/db.ts';
import { readEvents } from '../support/recvlogical.ts';

const ROWS = 20_000;

async function fill(url: string, table: string, rows: number): Promise<void> {
  await sql(url, `CREATE TABLE ${table} (id serial PRIMARY KEY, v int NOT NULL, note text)`);
  await sql(url, `INSERT INTO ${table} (v, note) SELECT g, md5(g::text) FROM generate_series(1, ${rows}) g`);
  await sql(url, `ANALYZE ${table}`);
}

/** Waits until the file holds the event of a marker row written now: everything before it is in. */
async function caughtUp(url: string, file: string): Promise<void> {
  const [m] = await sql<{ id: number }>(url, `INSERT INTO public.bf_marker DEFAULT VALUES RETURNING id`);
  await waitUntil('the marker event', async () =>
    readEvents(file).events.some((e) => {
      const d = e.data as { table: string; after: { id: number } | null };
      return d.table === 'bf_marker' && d.after?.id === m!.id;
    }),
  );
}

describe.each(['wal2json', 'pgoutput'])('backfill --plugin %s (file sink)', (plugin) => {
  let db: { url: string; drop: () => Promise<void> };
  const dir = mkdtempSync(join(tmpdir(), 'tagc-backfill-'));
  const file = join(dir, 'events.ndjson');
  const args = () => [
    'extract-tasks',
    '--plugin',
    plugin,
    '--pg-url',
    db.url,
    '--slot',
    'bf_slot',
    '--sink',
    'file',
    '--file-path',
    file,
    '--serverPort',
    '0',
    '--batch-size',
    '200',
    '--backfill-chunk-size',
    '200',
    '--stream-retention-bytes',
    '0',
    '--preset',
    'none',
  ];
  let d: Daemon | undefined;

  beforeAll(async () => {
    db = await testDatabase(`backfill_${plugin}`);
    // Filled before the slot exists: only a backfill can bring these rows into the sink.
    await fill(db.url, 'public.bf_items', ROWS);
    await sql(db.url, `CREATE TABLE public.bf_marker (id serial PRIMARY KEY)`);
    await sql(db.url, `CREATE TABLE public.bf_nopk (a int)`);
  });
  afterAll(async () => {
    await d?.kill('SIGKILL');
    await db.drop();
  });

  it('ends done by itself after two SIGKILLs under concurrent writes, and the folded events equal the table', async () => {
    d = runCli(args());
    await waitStreaming(d);
    let api = await apiUrl(d);
    const res = await fetch(`${api}/v1/api/backfills`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ tables: ['public.bf_items'] }),
    });
    expect(res.status).toBe(202);
    const created = (await res.json()) as {
      id: string;
      state: string;
      tables: { table: string; estimatedRows: number }[];
    };
    // The runner may take it up before the answer is written: queued or already running.
    expect(['queued', 'running']).toContain(created.state);
    expect(created.tables).toMatchObject([{ table: 'public.bf_items', estimatedRows: ROWS }]);
    const churn = startChurn(db.url, 'public.bf_items', ROWS + 2000);
    for (const atChunks of [15, 45]) {
      await waitUntil(
        `${atChunks} chunks`,
        async () => (await backfillState(db.url, created.id)).chunks >= atChunks,
      );
      await d.kill('SIGKILL');
      d = runCli(args());
      await waitStreaming(d);
    }
    api = await apiUrl(d);
    await waitUntil(
      'the backfill done',
      async () => (await backfillState(db.url, created.id)).state === 'done',
      120_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; the daemon said: ${d!.stderr().slice(-3000)}`);
    });
    const writes = await churn.stop();
    await caughtUp(db.url, file);

    const got = (await (await fetch(`${api}/v1/api/backfills/${created.id}`)).json()) as {
      state: string;
      tables: { rows: number; chunks: number; lastKey: string[] | null }[];
    };
    expect(got.state).toBe('done');
    expect(got.tables[0]!.chunks).toBeGreaterThan(50);
    const info = (await (await fetch(`${api}/info`)).json()) as { backfills: { id: string }[] };
    expect(info.backfills.map((b) => b.id)).toContain(created.id);
    const metrics = await (await fetch(`${api}/metrics`)).text();
    expect(metrics).toMatch(/tag_connector_backfill_rows_total\{table="public.bf_items"\} \d+/);
    expect(metrics).toMatch(/tag_connector_backfill_remaining_estimate 0/);

    const { events, duplicates } = readEvents(file);
    expect(duplicates).toEqual([]);
    const reads = events.filter((e) => (e.data as { op: string }).op === 'r');
    expect(reads.length).toBeGreaterThan(ROWS / 2);
    expect(new Set(reads.map((e) => e.type))).toEqual(new Set(['row.read']));
    expect(writes).toBeGreaterThan(100);
    const folded = fold(events, 'bf_items');
    const table = await tableRows(db.url, 'public.bf_items');
    expect(folded.size).toBe(table.size);
    const diff = [...table].filter(([id, row]) => JSON.stringify(folded.get(id)) !== JSON.stringify(row));
    expect(diff.slice(0, 5)).toEqual([]);
    expect(d.stderr()).toMatch(/"msg":"backfill table done"/);
  }, 240_000);

  it('takes a request through the signal table, refuses a table without a key, and cancels', async () => {
    const api = await apiUrl(d!);
    await fill(db.url, 'public.bf_sig', 3000);
    await sql(
      db.url,
      `INSERT INTO tag_connector.signals (type, data) VALUES ('backfill', '{"tables": ["public.bf_sig"]}')`,
    );
    let sigId = '';
    await waitUntil('the signal backfill done', async () => {
      const list = (await (await fetch(`${api}/v1/api/backfills`)).json()) as {
        id: string;
        origin: string;
        state: string;
      }[];
      const b = list.find((x) => x.origin === 'signal');
      sigId = b?.id ?? '';
      return b?.state === 'done';
    });
    await caughtUp(db.url, file);
    const events = readEvents(file).events;
    expect(fold(events, 'bf_sig')).toEqual(await tableRows(db.url, 'public.bf_sig'));
    expect(sigId).toMatch(/^bf_/);

    const noPk = await fetch(`${api}/v1/api/backfills`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ tables: ['public.bf_nopk'] }),
    });
    expect(noPk.status).toBe(400);
    expect(((await noPk.json()) as { message: string }).message).toMatch(
      /no primary key.*--backfill-allow-ctid/,
    );

    const res = await fetch(`${api}/v1/api/backfills`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ tables: ['public.bf_items'], chunkSize: 10 }),
    });
    const { id } = (await res.json()) as { id: string };
    await waitUntil('a few chunks', async () => (await backfillState(db.url, id)).chunks >= 3);
    const del = await fetch(`${api}/v1/api/backfills/${id}`, { method: 'DELETE' });
    expect(del.status).toBe(200);
    expect(((await del.json()) as { state: string }).state).toBe('canceled');
    expect((await fetch(`${api}/v1/api/backfills/${id}`, { method: 'DELETE' })).status).toBe(200);
    expect((await fetch(`${api}/v1/api/backfills/bf_nosuch`)).status).toBe(404);
    // The canceled backfill holds nothing back: the slot is confirmed past a write made after it.
    await caughtUp(db.url, file);
    const [{ lsn }] = (await sql<{ lsn: string }>(db.url, `SELECT pg_current_wal_lsn()::text AS lsn`)) as [
      { lsn: string },
    ];
    await waitUntil('the slot confirmed past the cancel', async () => {
      const [r] = await sql<{ ok: boolean }>(
        db.url,
        `SELECT confirmed_flush_lsn >= $1::pg_lsn AS ok FROM pg_replication_slots WHERE slot_name = 'bf_slot'`,
        [lsn],
      );
      if (!r?.ok) await sql(db.url, `INSERT INTO public.bf_marker DEFAULT VALUES`);
      return Boolean(r?.ok);
    });
    const exit = await d!.kill('SIGTERM');
    expect(exit.code).toBe(0);
  }, 180_000);

  it('--snapshot-mode initial_only on a fresh slot reads every tracked table, then stops', async () => {
    const file2 = join(dir, 'initial.ndjson');
    const d2 = runCli([
      'extract-tasks',
      '--plugin',
      plugin,
      '--pg-url',
      db.url,
      '--slot',
      'bf_initial',
      '--sink',
      'file',
      '--file-path',
      file2,
      '--serverPort',
      '0',
      '--snapshot-mode',
      'initial_only',
      '--stream-retention-bytes',
      '0',
      '--preset',
      'none',
      '--tables',
      'public.bf_items,public.bf_sig',
    ]);
    const exit = await d2.exit;
    if (exit.code !== 0) console.log(d2.stderr().slice(-3000));
    expect(exit.code).toBe(0);
    const events = readEvents(file2).events;
    expect(fold(events, 'bf_items')).toEqual(await tableRows(db.url, 'public.bf_items'));
    expect(fold(events, 'bf_sig')).toEqual(await tableRows(db.url, 'public.bf_sig'));
    await sql(db.url, `SELECT pg_drop_replication_slot('bf_initial')`);
  }, 180_000);
});
