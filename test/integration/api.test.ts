import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import WebSocket from 'ws';
import { runCli, waitStreaming, type Daemon } from '../support/daemon.ts';
import { sql, testDatabase } from '../support/db.ts';
import { freePort } from '../support/ports.ts';
import { parseLsn } from '../../src/util/lsn.ts';

type Row = Record<string, unknown>;

/** Reads an SSE stream, calling onEvent for each data frame, until stop() is called. */
function sse(
  url: string,
  headers: Record<string, string>,
  onEvent: (id: string, data: any, event?: string) => void,
) {
  let req: ReturnType<typeof get>;
  let response: import('node:http').IncomingMessage | undefined;
  const done = new Promise<number>((resolve) => {
    req = get(url, { headers: { accept: 'text/event-stream', ...headers } }, (res) => {
      response = res;
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        let at: number;
        while ((at = buf.indexOf('\n\n')) >= 0) {
          const frame = buf.slice(0, at);
          buf = buf.slice(at + 2);
          let id = '';
          let data = '';
          let event: string | undefined;
          for (const line of frame.split('\n')) {
            if (line.startsWith('id: ')) id = line.slice(4);
            else if (line.startsWith('data: ')) data += line.slice(6);
            else if (line.startsWith('event: ')) event = line.slice(7);
          }
          if (data) onEvent(id, JSON.parse(data), event);
        }
      });
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
  });
  return {
    stop: () => req.destroy(),
    done,
    /** Stop reading (the socket's receive window fills up), then read again. */
    pause: () => response?.pause(),
    resume: () => response?.resume(),
  };
}

describe('HTTP API against a running extract-tasks', () => {
  let db: { url: string; drop: () => Promise<void> };
  let d: Daemon;
  let base: string;
  const dir = mkdtempSync(join(tmpdir(), 'tagc-api-'));
  const tokens = join(dir, 'tokens.yaml');

  beforeAll(async () => {
    db = await testDatabase('api');
    await sql(
      db.url,
      `CREATE TABLE items (id int PRIMARY KEY, v int NOT NULL, workspace text NOT NULL DEFAULT 'w1', note text)`,
    );
    await sql(
      db.url,
      `INSERT INTO items SELECT g, g, CASE WHEN g % 2 = 0 THEN 'w1' ELSE 'w2' END, 'x' FROM generate_series(1, 2000) g`,
    );
    writeFileSync(
      tokens,
      `- token: full-secret-token\n  name: full\n- token: w1-token\n  workspaces: [w1]\n`,
    );
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    d = runCli([
      'extract-tasks',
      '--pg-url',
      db.url,
      '--slot',
      'api_slot',
      '--sink',
      'file',
      '--file-path',
      join(dir, 'events.ndjson'),
      '--serverPort',
      String(port),
      '--auth-tokens-file',
      tokens,
      '--stream-retention-dir',
      join(dir, 'stream'),
      '--stream-client-buffer-bytes',
      '2000000',
      '--password',
      'pg-secret-pw',
    ]);
    await waitStreaming(d);
  });
  afterAll(async () => {
    await d?.kill('SIGTERM');
    await db.drop();
  });
  const auth = { authorization: 'Bearer full-secret-token' };

  /**
   * Snapshot, then Stream from its LSN, folded into the final table state under concurrent writes
   * (deletes carry the key only: default replica identity). Every streamed event is kept in a list,
   * not only folded into the map, so a duplicate at the seam or an event from before the snapshot's
   * LSN cannot hide.
   */
  async function handOff(workspace?: string): Promise<void> {
    const scope = workspace ? `&workspace=${workspace}` : '';
    let running = true;
    const writer = (async () => {
      const c = new pg.Client({ connectionString: db.url });
      await c.connect();
      let i = 0;
      while (running) {
        const id = 1 + Math.floor(Math.random() * 3000);
        const op = i++ % 3;
        if (op === 0)
          await c.query(
            `INSERT INTO items (id, v, workspace) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v`,
            [id, i, id % 2 === 0 ? 'w1' : 'w2'],
          );
        else if (op === 1) await c.query(`UPDATE items SET v = v + 1 WHERE id = $1`, [id]);
        else await c.query(`DELETE FROM items WHERE id = $1`, [id]);
      }
      await c.end();
    })();
    await new Promise((r) => setTimeout(r, 300));
    const res = await fetch(`${base}/v1/api/ws/Snapshot?table=items${scope}`, { headers: auth });
    expect(res.status).toBe(200);
    const body = await res.text().catch((err: Error) => {
      throw new Error(`snapshot body: ${err.message} ${d.stderr().slice(-1500)}`);
    });
    const lines = body
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    const header = lines[0];
    expect(header.type).toBe('snapshot.header');
    expect(header.lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    const state = new Map<string, Row>();
    for (const l of lines.slice(1)) if (l.type === 'snapshot.row') state.set(String(l.after.id), l.after);
    expect(lines[lines.length - 1].type).toBe('snapshot.end');
    let streamError: unknown;
    const events: { id: string; commitlsn: string }[] = [];
    const stream = sse(
      `${base}/v1/api/ws/Stream?table=items${scope}&fromLsn=${header.lsn}`,
      auth,
      (id, e, event) => {
        if (event === 'error') return void (streamError = e);
        events.push({ id, commitlsn: e.commitlsn });
        const key = String(e.subject).split('/').pop()!;
        if (e.data.op === 'd') state.delete(key);
        else if (e.data.after) state.set(String(e.data.after.id), e.data.after);
      },
    );
    await new Promise((r) => setTimeout(r, 1500));
    running = false;
    await writer;
    const final = await sql<Row>(
      db.url,
      `SELECT id, v, workspace, note FROM items WHERE $1::text IS NULL OR workspace = $1 ORDER BY id`,
      [workspace ?? null],
    );
    const want = JSON.stringify(final);
    const deadline = Date.now() + 30000;
    const have = () =>
      JSON.stringify(
        [...state.values()]
          .sort((a, b) => (a.id as number) - (b.id as number))
          .map((r) => ({ id: r.id, v: r.v, workspace: r.workspace, note: r.note })),
      );
    while (have() !== want && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    stream.stop();
    expect(streamError).toBeUndefined();
    expect(have()).toBe(want);
    expect(events.length).toBeGreaterThan(50);
    const ids = events.map((e) => e.id);
    expect(ids.length - new Set(ids).size).toBe(0);
    const from = parseLsn(header.lsn);
    expect(events.filter((e) => parseLsn(e.commitlsn) < from)).toEqual([]);
  }

  it('Snapshot then Stream?fromLsn= yields exactly the final table state under concurrent writes', async () => {
    await handOff();
  }, 60_000);

  it('the same hand-off with a workspace filter: deletes by key reach it, nothing twice', async () => {
    await handOff('w1');
  }, 60_000);

  it('resumes with Last-Event-ID with no gap and no duplicate', async () => {
    const until = async (cond: () => boolean) => {
      const deadline = Date.now() + 20000;
      while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    };
    const first: string[] = [];
    const s1 = sse(`${base}/v1/api/ws/Stream?table=items`, auth, (id) => first.push(id));
    await new Promise((r) => setTimeout(r, 500));
    const n1 = (await sql(db.url, `UPDATE items SET v = v + 1 WHERE id <= 50 RETURNING id`)).length;
    await until(() => first.length >= n1);
    s1.stop();
    const n2 = (await sql(db.url, `UPDATE items SET v = v + 1 WHERE id <= 50 RETURNING id`)).length;
    const last = first[Math.floor(first.length / 2)]!;
    const second: string[] = [];
    const s2 = sse(`${base}/v1/api/ws/Stream?table=items`, { ...auth, 'last-event-id': last }, (id) =>
      second.push(id),
    );
    await until(() => second.length >= first.length - first.indexOf(last) - 1 + n2);
    await new Promise((r) => setTimeout(r, 300));
    s2.stop();
    const all = [...first.slice(0, first.indexOf(last) + 1), ...second];
    expect(new Set(all).size).toBe(all.length);
    expect(second[0]).toBe(first[first.indexOf(last) + 1]);
    expect(n1).toBeGreaterThan(10);
    expect(all.length).toBe(first.length + n2);
  }, 30_000);

  it('serves live events over WebSocket, with workspace filters and token scopes', async () => {
    const got: any[] = [];
    const ws = new WebSocket(`${base.replace('http', 'ws')}/v1/api/ws/Stream?table=items`, {
      headers: { authorization: 'Bearer w1-token' },
    });
    await new Promise((r, j) => {
      ws.on('open', r);
      ws.on('error', j);
    });
    ws.on('message', (m) => got.push(JSON.parse(m.toString())));
    await sql(db.url, `UPDATE items SET note = 'ws' WHERE id BETWEEN 1 AND 20`);
    await new Promise((r) => setTimeout(r, 1000));
    ws.close();
    expect(got.length).toBeGreaterThan(0);
    for (const e of got) expect(e.data.after.workspace).toBe('w1');
    const forbidden = await fetch(`${base}/v1/api/ws/Snapshot?workspace=w2`, {
      headers: { authorization: 'Bearer w1-token' },
    });
    expect(forbidden.status).toBe(403);
  });

  it('cuts off a slow client with a stated reason', async () => {
    let cut: any;
    let count = 0;
    const s = sse(`${base}/v1/api/ws/Stream?table=items`, auth, (_id, data, event) => {
      if (event === 'error') cut = data;
      else count++;
    });
    // Stop reading: the kernel buffers fill, then the server's own buffer passes its bound.
    await new Promise((r) => setTimeout(r, 200));
    s.pause();
    await sql(db.url, `UPDATE items SET note = repeat('y', 8000)`);
    await sql(db.url, `UPDATE items SET note = repeat('z', 8000)`);
    await new Promise((r) => setTimeout(r, 3000));
    s.resume();
    await Promise.race([s.done, new Promise((r) => setTimeout(r, 10000))]);
    expect(cut?.error).toBe('slow_consumer');
    expect(count).toBeLessThan(4000);
  }, 30_000);

  it('refuses bad requests with 4xx JSON and keeps serving', async () => {
    const noToken = await fetch(`${base}/info`);
    expect(noToken.status).toBe(401);
    expect((await noToken.json()).error).toBe('unauthorized');
    const badLsn = await fetch(`${base}/v1/api/ws/Stream?fromLsn=nonsense`, { headers: auth });
    expect(badLsn.status).toBe(400);
    expect((await badLsn.json()).message).toMatch(/fromLsn/);
    const unknown = await fetch(`${base}/v1/api/ws/Stream?colour=red`, { headers: auth });
    expect(unknown.status).toBe(400);
    const old = await fetch(`${base}/v1/api/ws/Stream?fromLsn=0/1`, { headers: auth });
    expect(old.status).toBe(410);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const openapi = await (await fetch(`${base}/openapi.json`, { headers: auth })).json();
    expect(Object.keys(openapi.paths)).toEqual(
      expect.arrayContaining(['/info', '/v1/api/ws/Stream', '/v1/api/ws/Snapshot']),
    );
  });

  it('/info is JSON with slot, sinks, lag and redacted secrets', async () => {
    const res = await fetch(`${base}/info`, { headers: auth });
    const text = await res.text();
    expect(text).not.toContain('pg-secret-pw');
    const info = JSON.parse(text);
    expect(info).toMatchObject({ slot: 'api_slot', plugin: 'wal2json', state: 'streaming' });
    expect(info.config.password).toBe('[redacted]');
    expect(typeof info.lagBytes).toBe('number');
    expect(info.walStatus).toBeDefined();
    expect(info.sinks.map((s: { name: string }) => s.name)).toEqual(['file', 'stream-log']);
    expect(info.sinks[0].checkpointLsn).toMatch(/\//);
    const metrics = await (await fetch(`${base}/metrics`, { headers: auth })).text();
    expect(metrics).toContain('tag_connector_events_total');
  });

  it('exits 0 on SIGTERM within 10 s even with Stream clients connected', async () => {
    const s1 = sse(`${base}/v1/api/ws/Stream`, auth, () => undefined);
    const ws = new WebSocket(`${base.replace('http', 'ws')}/v1/api/ws/Stream`, { headers: auth });
    await new Promise((r) => ws.on('open', r));
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    const exit = await d.kill('SIGTERM');
    expect(exit.code).toBe(0);
    expect(Date.now() - t0).toBeLessThan(10_000);
    s1.stop();
    ws.terminate();
  });
});
