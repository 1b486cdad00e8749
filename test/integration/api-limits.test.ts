import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import WebSocket from 'ws';
import { runCli, waitStreaming, type Daemon } from '../support/daemon.ts';
import { sql, testDatabase } from '../support/db.ts';
import { freePort } from '../support/ports.ts';

/** Admission limits: concurrent Snapshots, the wal sender reserve, Stream clients, body size. */
describe('API limits on a running extract-tasks', () => {
  let db: { url: string; drop: () => Promise<void> };
  let d: Daemon;
  let base: string;
  beforeAll(async () => {
    db = await testDatabase('limits');
    await sql(db.url, `CREATE TABLE items (id int PRIMARY KEY, workspace text)`);
    await sql(db.url, `INSERT INTO items SELECT g, 'w1' FROM generate_series(1, 100) g`);
    const dir = mkdtempSync(join(tmpdir(), 'tagc-limits-'));
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    d = runCli([
      'extract-tasks',
      '--pg-url',
      db.url,
      '--slot',
      'limits_slot',
      '--sink',
      'file',
      '--file-path',
      join(dir, 'e.ndjson'),
      '--serverPort',
      String(port),
      '--stream-retention-dir',
      join(dir, 's'),
      '--stream-max-clients',
      '1',
    ]);
    await waitStreaming(d);
  });
  afterAll(async () => {
    await d?.kill('SIGTERM');
    await db?.drop();
  });

  it('serves 2 Snapshots at once (the default) and answers a third 429 with Retry-After', async () => {
    // An open transaction holding an xid: a Snapshot's temporary slot waits for it to end (its
    // consistent point), so two Snapshots stay in flight until it commits.
    const locker = new pg.Client({ connectionString: db.url });
    locker.on('error', () => undefined);
    await locker.connect();
    await locker.query('BEGIN');
    await locker.query('SELECT txid_current()');
    const held = [fetch(`${base}/v1/api/ws/Snapshot`), fetch(`${base}/v1/api/ws/Snapshot`)];
    const inFlight = async () =>
      (
        await sql<{ n: number }>(
          db.url,
          `SELECT count(*)::int AS n FROM pg_stat_activity
            WHERE application_name = 'tag-connector-snapshot' AND backend_type = 'client backend'`,
        )
      )[0]!.n;
    const deadline = Date.now() + 20_000;
    while ((await inFlight()) < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const third = await fetch(`${base}/v1/api/ws/Snapshot`);
    expect(third.status).toBe(429);
    expect(third.headers.get('retry-after')).toBe('5');
    expect(await third.json()).toMatchObject({ error: 'too_many_requests' });
    await locker.query('COMMIT');
    await locker.end();
    const first = await Promise.all(held);
    expect(first.map((r) => r.status)).toEqual([200, 200]);
    for (const r of first) expect((await r.text()).trim().split('\n').pop()).toMatch(/snapshot\.end/);
    // Both places are free again.
    expect((await fetch(`${base}/v1/api/ws/Snapshot`)).status).toBe(200);
  });

  it('never takes the last free wal sender: the daemon keeps one to reconnect', async () => {
    const free = async () =>
      (
        await sql<{ free: number }>(
          db.url,
          `SELECT current_setting('max_wal_senders')::int -
                  (SELECT count(*)::int FROM pg_stat_activity WHERE backend_type = 'walsender') AS free`,
        )
      )[0]!.free;
    const fillers: pg.Client[] = [];
    try {
      // Take wal senders until exactly one is free.
      while ((await free()) > 1) {
        const c = new pg.Client({ connectionString: db.url, replication: 'database' } as pg.ClientConfig);
        c.on('error', () => undefined);
        await c.connect();
        fillers.push(c);
      }
      const refused = await fetch(`${base}/v1/api/ws/Snapshot`);
      expect(refused.status).toBe(429);
      expect((await refused.json()).message).toMatch(/max_wal_senders/);
      expect(await free()).toBe(1);
      // The daemon can still reconnect: cut its stream and watch it come back on the kept sender.
      const before = d.stderr().split('"msg":"streaming"').length;
      await sql(
        db.url,
        `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = 'limits_slot'`,
      );
      const deadline = Date.now() + 30_000;
      while (d.stderr().split('"msg":"streaming"').length === before && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 100));
      expect(d.stderr().split('"msg":"streaming"').length).toBeGreaterThan(before);
      // One more sender free: a Snapshot may take it.
      await fillers.pop()!.end();
      await fillers.pop()!.end();
      expect((await fetch(`${base}/v1/api/ws/Snapshot`)).status).toBe(200);
    } finally {
      await Promise.all(fillers.map((c) => c.end().catch(() => undefined)));
    }
  }, 60_000);

  it('caps Stream clients (--stream-max-clients 1): SSE and WebSocket get 429', async () => {
    let status = 0;
    const req = get(`${base}/v1/api/ws/Stream`, (res) => (status = res.statusCode ?? 0));
    while (!status) await new Promise((r) => setTimeout(r, 20));
    expect(status).toBe(200);
    const second = await fetch(`${base}/v1/api/ws/Stream`);
    expect(second.status).toBe(429);
    expect(second.headers.get('retry-after')).toBe('5');
    const ws = new WebSocket(`${base.replace('http', 'ws')}/v1/api/ws/Stream`);
    const wsStatus = await new Promise<number>((resolve) => {
      ws.on('unexpected-response', (_r, res) => resolve(res.statusCode ?? 0));
      ws.on('open', () => resolve(101));
      ws.on('error', () => undefined);
    });
    expect(wsStatus).toBe(429);
    req.destroy();
    // The place comes back when the client goes.
    const deadline = Date.now() + 5000;
    let again = 429;
    while (again === 429 && Date.now() < deadline) {
      const abort = new AbortController();
      again = (await fetch(`${base}/v1/api/ws/Stream`, { signal: abort.signal })).status;
      abort.abort();
      if (again === 429) await new Promise((r) => setTimeout(r, 50));
    }
    expect(again).toBe(200);
  });
});
