import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync } from 'node:fs';
import { get, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, waitStreaming, type Daemon } from '../support/daemon.ts';
import { sql, testDatabase } from '../support/db.ts';
import { freePort } from '../support/ports.ts';
import { readEvents } from '../support/recvlogical.ts';

type Ev = { type: string; partitionkey: string; data: { op: string; after: Record<string, unknown> } };

const BIG_ROWS = 200_000;

/** The daemon's resident set size in bytes (Linux). */
function rss(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

describe('GET /v1/api/ws/Snapshot (COPY-based)', () => {
  let db: { url: string; drop: () => Promise<void> };
  let d: Daemon;
  let base: string;
  const dir = mkdtempSync(join(tmpdir(), 'tagc-snap-'));
  const file = join(dir, 'events.ndjson');

  beforeAll(async () => {
    db = await testDatabase('snap');
    await sql(db.url, `CREATE TYPE mood AS ENUM ('happy', 'sad')`);
    await sql(
      db.url,
      `CREATE TABLE wide (
        id bigint PRIMARY KEY, i2 int2, i4 int4, i8 int8, n numeric(30,10), f4 real, f8 float8, b bool, t text,
        j json, jb jsonb, ai int[], at text[], by bytea, u uuid, ts timestamptz, tsn timestamp, d date, e text,
        vc varchar(20), iv interval, m mood, ms mood[], a8 int8[], ab bool[])`,
    );
    // Filled before the daemon's slot exists: only the snapshot reads it.
    await sql(db.url, `CREATE TABLE big (id int PRIMARY KEY, label text NOT NULL, pad text NOT NULL)`);
    await sql(
      db.url,
      `INSERT INTO big SELECT g, md5(g::text), repeat(md5((-g)::text), 24) FROM generate_series(1, $1::int) g`,
      [BIG_ROWS],
    );
    await sql(db.url, `CREATE TABLE ws_rows (id int PRIMARY KEY, workspace text, v text)`);
    await sql(db.url, `CREATE TABLE plain (k text PRIMARY KEY, n int)`);
    await sql(db.url, `INSERT INTO plain VALUES ('x"y', 1), ('z', NULL)`);
    await sql(
      db.url,
      // (row 4's value holds a tab)
      `INSERT INTO ws_rows VALUES (1, 'w1', 'a'), (2, 'w2', 'b'), (3, NULL, 'c'), (4, 'w1', E'd\\te'), (5, 'w3', 'f')`,
    );
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    d = runCli([
      'extract-tasks',
      '--pg-url',
      db.url,
      '--slot',
      `snap_slot_${process.pid}`,
      '--sink',
      'file',
      '--file-path',
      file,
      '--serverPort',
      String(port),
      // pgoutput: it sends every value as Postgres' text. (wal2json 2.5 prints NaN and ±Infinity
      // numbers as JSON null, a known difference; the snapshot keeps 'NaN' as pgoutput does.)
      '--plugin',
      'pgoutput',
      '--publication',
      'snap_pub',
    ]);
    await waitStreaming(d);
  }, 120_000);
  afterAll(async () => {
    const stopped = d?.kill('SIGTERM');
    const timer = setTimeout(() => void d?.kill('SIGKILL'), 10_000);
    await stopped;
    clearTimeout(timer);
    await db?.drop();
  });

  it('rows equal what the change stream carries for the same rows, every type', async () => {
    await sql(
      db.url,
      `INSERT INTO wide VALUES
        (9223372036854775807, -32768, 2147483647, -9223372036854775808, 12345678901234567890.0123456789, 1.5,
         1.0000000000000002, true, E'tab\\there\\nnew line\\r\\\\back\\\\slash \\\\N héllo "wörld" ✓ 😀',
         '{"a": 1, "s": "x\\ty"}', '{"b": [1, 2.5, null], "c": {"d": "\\\\"}}', '{1,2,3}',
         '{"x y",NULL,z,"q\\"uote","back\\\\slash","NULL"}', '\\x00ff10', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
         '2024-02-29 23:59:59.123456+02', '2024-02-29 23:59:59.5', '2024-02-29', NULL,
         'var\tchar', '1 year 2 mons 3 days 04:05:06.789', 'happy', '{happy,sad}', '{9223372036854775807,NULL}', '{t,f,NULL}'),
        (1, 0, 0, 0, 0, 'NaN', 'Infinity', false, '', 'null', '[]', '{}', '{}', '\\x', '00000000-0000-0000-0000-000000000000',
         'infinity', '-infinity', '0001-01-01 BC', E'\\\\N', '', '-1 days', 'sad', '{}', '{}', '{}'),
        (2, NULL, NULL, NULL, NULL, '-Infinity', '-0', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
        (3, 1, -1, 1, -0.0000000001, 3.4e38, 1e-300, true, E'\\x01\\x7f\\b\\f\\v', '"str"', '1e2', '{NULL}', '{""}',
         '\\x5c7409', 'ffffffff-ffff-ffff-ffff-ffffffffffff', '2024-01-01 00:00:00+00', '2024-01-01 00:00:00',
         '2024-01-01', repeat('long ', 20000), 'x', '0', 'happy', '{sad,NULL}', '{-1}', '{true}')`,
    );
    const deadline = Date.now() + 60_000;
    let events: Ev[] = [];
    while (Date.now() < deadline) {
      events = (readEvents(file).events as unknown as Ev[]).filter((e) => e.type === 'row.insert');
      if (events.length >= 4) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(events).toHaveLength(4);

    const res = await fetch(`${base}/v1/api/ws/Snapshot?table=wide`);
    expect(res.status).toBe(200);
    const lines = (await res.text())
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    expect(lines[0].type).toBe('snapshot.header');
    expect(lines[0].tables).toEqual(['public.wide']);
    expect(lines.at(-1)).toEqual({ type: 'snapshot.end', lsn: lines[0].lsn, rows: 4 });
    const rows = lines.slice(1, -1);
    expect(rows).toHaveLength(4);
    for (const row of rows) {
      expect(row.type).toBe('snapshot.row');
      expect(row.after).toEqual(row.data.after);
      const ev = events.find((e) => e.data.after.id === row.after.id);
      expect(ev).toBeDefined();
      expect(row.data.after).toEqual(ev!.data.after);
      expect(row.key).toBe(ev!.partitionkey);
      // Same key order too (the change stream builds its objects column by column).
      expect(Object.keys(row.after)).toEqual(Object.keys(ev!.data.after));
    }
    const max = rows.find((r) => r.key === '9223372036854775807')!;
    expect(max.after).toMatchObject({ id: '9223372036854775807', i8: '-9223372036854775808', i2: -32768 });
    expect(max.after.t).toBe('tab\there\nnew line\r\\back\\slash \\N héllo "wörld" ✓ 😀');
    expect(max.after.at).toEqual(['x y', null, 'z', 'q"uote', 'back\\slash', 'NULL']);
    expect(max.after.by).toBe(Buffer.from([0, 255, 16]).toString('base64'));
    const one = rows.find((r) => r.key === '1')!;
    expect(one.after).toMatchObject({ f4: 'NaN', f8: 'Infinity', b: false, t: '', e: '\\N' });
    const two = rows.find((r) => r.key === '2')!;
    expect(two.after).toMatchObject({ f4: '-Infinity', i2: null, t: null, ts: null });
  });

  it('several tables in one snapshot, and the workspace filter', async () => {
    const read = async (query: string) => {
      const res = await fetch(`${base}/v1/api/ws/Snapshot?${query}`);
      expect(res.status).toBe(200);
      return (await res.text())
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l));
    };
    const all = await read('table=ws_rows,plain');
    expect(all[0].tables).toEqual(['public.plain', 'public.ws_rows']);
    expect(all.at(-1)).toEqual({ type: 'snapshot.end', lsn: all[0].lsn, rows: 7 });
    // One table after the other, each in its heap order (insertion order here).
    expect(all.slice(1, -1).map((r) => `${r.table}/${r.key}`)).toEqual([
      'plain/x"y',
      'plain/z',
      ...['1', '2', '3', '4', '5'].map((k) => `ws_rows/${k}`),
    ]);
    expect(all[2].after).toEqual({ k: 'z', n: null });
    const ws = all.find((r) => r.table === 'ws_rows' && r.key === '4');
    expect(ws).toEqual({
      type: 'snapshot.row',
      schema: 'public',
      table: 'ws_rows',
      key: '4',
      after: { id: 4, workspace: 'w1', v: 'd\te' },
      data: {
        op: 'r',
        schema: 'public',
        table: 'ws_rows',
        before: null,
        after: { id: 4, workspace: 'w1', v: 'd\te' },
      },
    });

    // Tables without the workspace column have no row in any workspace.
    const w1 = await read('table=plain,ws_rows&workspace=w1,w3');
    expect(w1.slice(1, -1).map((r) => r.key)).toEqual(['1', '4', '5']);
    expect(w1.at(-1).rows).toBe(3);
  });

  it(`streams ${BIG_ROWS} rows to a slow client with bounded memory`, async () => {
    const pid = d.proc.pid!;
    let peak = rss(pid);
    const sampler = setInterval(() => (peak = Math.max(peak, rss(pid))), 50);
    try {
      const res = await new Promise<IncomingMessage>((resolve, reject) =>
        get(`${base}/v1/api/ws/Snapshot?table=big`, resolve).on('error', reject),
      );
      expect(res.statusCode).toBe(200);
      res.pause();
      // Not reading at all for a while: the daemon must wait, not buffer the table.
      await new Promise((r) => setTimeout(r, 1500));
      let lines = 0;
      let bytes = 0;
      let tail = '';
      let first = '';
      await new Promise<void>((resolve, reject) => {
        res.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
          for (let i = 0; i < chunk.length; i++) if (chunk[i] === 0x0a) lines++;
          if (first.length < 8000) first += chunk.toString('utf8', 0, Math.min(chunk.length, 8000));
          tail = (tail + chunk.toString('utf8', Math.max(0, chunk.length - 4000))).slice(-4000);
          // A slow reader: a 20 ms pause after every 4 MB.
          if (Math.floor(bytes / 4e6) !== Math.floor((bytes - chunk.length) / 4e6)) {
            res.pause();
            setTimeout(() => res.resume(), 20);
          }
        });
        res.on('end', resolve);
        res.on('error', reject);
        res.resume();
      });
      expect(lines).toBe(BIG_ROWS + 2);
      const row = JSON.parse(first.split('\n')[1]!);
      expect(row.after).toEqual({ id: 1, label: expect.any(String), pad: expect.any(String) });
      expect(JSON.parse(tail.trimEnd().split('\n').at(-1)!)).toMatchObject({
        type: 'snapshot.end',
        rows: BIG_ROWS,
      });
      // The body is larger than the bound: it was not held in memory.
      expect(bytes).toBeGreaterThan(300 * 1024 * 1024);
    } finally {
      clearInterval(sampler);
    }
    expect(peak).toBeLessThan(300 * 1024 * 1024);
  }, 120_000);
});
