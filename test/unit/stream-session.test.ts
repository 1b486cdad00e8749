import { mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from '@jest/globals';
import { StreamFilter, type EventFilter } from '../../src/api/stream/filters.ts';
import { StreamSession, type Transport } from '../../src/api/stream/session.ts';
import { sseTransport } from '../../src/api/stream/transports.ts';
import type { CloudEvent } from '../../src/events/envelope.ts';
import { outboundEvent, type OutboundEvent } from '../../src/sinks/sink.ts';
import { StreamLog } from '../../src/sinks/stream-log.ts';
import { formatLsn } from '../../src/util/lsn.ts';

const BASE = 0x1000000n;

/** Event i: its own transaction (commit LSN BASE + 0x100 i), seq 0, with the given row change. */
function rowEvent(
  i: number,
  change: {
    op: 'c' | 'u' | 'd' | 't';
    key?: string;
    table?: string;
    before?: Record<string, unknown> | null;
    after?: Record<string, unknown> | null;
    pad?: number;
  },
): OutboundEvent {
  const commitLsn = BASE + BigInt(i) * 0x100n;
  const commit = formatLsn(commitLsn);
  const table = change.table ?? 'items';
  const type =
    change.op === 't'
      ? 'row.truncate'
      : change.op === 'c'
        ? 'row.insert'
        : change.op === 'u'
          ? 'row.update'
          : 'row.delete';
  const event: CloudEvent = {
    specversion: '1.0',
    id: `${commit}/0`,
    source: '/tag-connector/db/slot',
    type,
    subject: change.op === 't' ? `public.${table}` : `public.${table}/${change.key}`,
    time: new Date(1700000000000 + i).toISOString(),
    datacontenttype: 'application/json',
    lsn: commit,
    commitlsn: commit,
    xid: 1000 + i,
    partitionkey: change.key ?? table,
    data: {
      op: change.op,
      schema: 'public',
      table,
      before: change.before ?? null,
      after: change.after ?? null,
      ...(change.pad ? { pad: 'x'.repeat(change.pad) } : {}),
    },
  };
  return outboundEvent(event, i + 1, { commitLsn, seq: 0 }, `public.${table}`);
}

const insert = (i: number, key: string, workspace: string, pad = 0) =>
  rowEvent(i, { op: 'c', key, after: { id: key, workspace, v: i }, pad });

/** A transport that keeps what it is sent; `buffered` is what send() reports as queued. */
class MemoryTransport implements Transport {
  readonly sent: { id: string; json: string }[] = [];
  closedWith?: { error: string; message: string };
  buffered = 0;
  private closers: (() => void)[] = [];
  send(id: string, json: string): number {
    this.sent.push({ id, json });
    return this.buffered;
  }
  async drained(): Promise<void> {}
  close(reason: { error: string; message: string }): void {
    this.closedWith = reason;
    for (const c of this.closers) c();
  }
  onClosed(cb: () => void): void {
    this.closers.push(cb);
  }
  ids(): string[] {
    return this.sent.map((s) => s.id);
  }
}

const dirs: string[] = [];
const logs: StreamLog[] = [];
async function streamLog(segmentBytes?: number): Promise<StreamLog> {
  const dir = mkdtempSync(join(tmpdir(), 'tagc-session-'));
  dirs.push(dir);
  const log = new StreamLog({
    dir,
    maxBytes: 1 << 30,
    startLsn: 0n,
    ...(segmentBytes ? { segmentBytes } : {}),
  });
  await log.open();
  logs.push(log);
  return log;
}
afterEach(async () => {
  for (const l of logs.splice(0)) await l.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const noFilter: EventFilter = { tables: null, types: null, workspaces: null };
const FROM_START = { commitLsn: 0n, seq: -1 };

describe('StreamSession', () => {
  it('replays, then goes live, with no gap and no duplicate at the seam', async () => {
    const log = await streamLog();
    await log.write(Array.from({ length: 100 }, (_, i) => insert(i, `k${i}`, 'w1')));
    const t = new MemoryTransport();
    const session = new StreamSession(t, {
      log,
      filter: noFilter,
      workspaceColumn: 'workspace',
      after: { commitLsn: BASE + 49n * 0x100n, seq: 0 },
      maxBufferedBytes: 1 << 20,
    });
    const running = session.run();
    // Live events written while the replay runs: some already in the log's range, some new.
    await log.write(Array.from({ length: 50 }, (_, k) => insert(100 + k, `k${100 + k}`, 'w1')));
    await running;
    await log.write(Array.from({ length: 10 }, (_, k) => insert(150 + k, `k${150 + k}`, 'w1')));
    const want = Array.from({ length: 110 }, (_, k) => `${formatLsn(BASE + BigInt(50 + k) * 0x100n)}/0`);
    expect(t.ids()).toEqual(want);
    session.dispose();
  });

  it('cuts a live client that falls behind with a reason naming where to resume', async () => {
    const log = await streamLog();
    const t = new MemoryTransport();
    const session = new StreamSession(t, {
      log,
      filter: noFilter,
      workspaceColumn: 'workspace',
      after: null,
      maxBufferedBytes: 1000,
    });
    await session.run();
    t.buffered = 2000;
    await log.write([insert(0, 'a', 'w1'), insert(1, 'b', 'w1')]);
    expect(t.closedWith?.error).toBe('slow_consumer');
    expect(t.closedWith?.message).toMatch(/Last-Event-ID 0\/1000000\/0/);
    expect(t.sent).toHaveLength(1); // nothing after the cut
  });

  it('sends a workspace-scoped client the deletes and departures of its rows (default replica identity)', async () => {
    const log = await streamLog();
    const t = new MemoryTransport();
    const session = new StreamSession(t, {
      log,
      filter: { tables: null, types: null, workspaces: new Set(['w1']) },
      workspaceColumn: 'workspace',
      hasWorkspaceColumn: (_s, table) => table !== 'plain',
      after: null,
      maxBufferedBytes: 1 << 20,
    });
    await session.run();
    await log.write([
      insert(0, 'a', 'w1'), // sent
      insert(1, 'b', 'w2'), // not ours
      insert(2, 'c', 'w1'), // sent
      rowEvent(3, { op: 'u', key: 'a', after: { id: 'a', workspace: 'w2', v: 3 } }), // a leaves: a delete
      rowEvent(4, { op: 'd', key: 'c', before: { id: 'c' } }), // key-only delete of a row we had
      rowEvent(5, { op: 'd', key: 'b', before: { id: 'b' } }), // key-only delete of a w2 row: not ours
      rowEvent(6, { op: 'd', key: 'z', before: { id: 'z' } }), // unknown row (from a Snapshot): sent
      rowEvent(7, { op: 'd', key: 'p', table: 'plain', before: { id: 'p' } }), // table without workspaces
      rowEvent(8, { op: 't' }), // TRUNCATE
      rowEvent(9, { op: 'u', key: 'b', after: { id: 'b', workspace: 'w1', v: 9 } }), // b comes in
      rowEvent(10, { op: 't', table: 'plain' }), // TRUNCATE of a table without workspaces: not even its name
    ]);
    const got = t.sent.map((s) => JSON.parse(s.json) as CloudEvent & { data: Record<string, unknown> });
    expect(got.map((e) => [e.id.split('/')[1], e.type, e.subject])).toEqual([
      ['1000000', 'row.insert', 'public.items/a'],
      ['1000200', 'row.insert', 'public.items/c'],
      ['1000300', 'row.delete', 'public.items/a'],
      ['1000400', 'row.delete', 'public.items/c'],
      ['1000600', 'row.delete', 'public.items/z'],
      ['1000800', 'row.truncate', 'public.items'],
      ['1000900', 'row.update', 'public.items/b'],
    ]);
    // The departure: a delete that shows nothing of the row's new workspace.
    expect(got[2]!.data).toMatchObject({ op: 'd', before: null, after: null, left_scope: true });
    expect(t.sent[2]!.json).not.toContain('w2');
    session.dispose();
  });

  const stalledClients: import('node:child_process').ChildProcess[] = [];
  afterEach(() => stalledClients.splice(0).forEach((c) => c.kill('SIGKILL')));

  it('serves a client that stalls and then reads on, whatever the client buffer: every event arrives', async () => {
    // A client buffer below the response's highWaterMark (64 KiB) once left the session waiting for a
    // 'drain' that never came: the stream stalled for good after the client's first pause.
    const log = await streamLog(256 * 1024);
    for (let b = 0; b < 5; b++)
      await log.write(Array.from({ length: 1000 }, (_, k) => insert(b * 1000 + k, `k${k}`, 'w1', 300)));
    const server: Server = createServer((_req, res) => {
      const t = sseTransport(res, () => undefined);
      void new StreamSession(t, {
        log,
        filter: noFilter,
        workspaceColumn: 'workspace',
        after: FROM_START,
        maxBufferedBytes: 64 * 1024,
      }).run();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as AddressInfo).port;
      const client = spawn('python3', ['-c', STALLED_CLIENT, String(port), '5000'], {
        stdio: ['pipe', 'pipe', 'inherit'],
      });
      stalledClients.push(client);
      let out = '';
      client.stdout.on('data', (b: Buffer) => (out += b.toString()));
      const code = await new Promise<number | null>((r) => client.once('exit', r));
      expect(code).toBe(0);
      expect(out.trim().split('\n').at(-1)).toBe('5000');
    } finally {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  }, 60_000);

  it('releases a disconnected SSE client waiting for drain: replay ended, segment file closed', async () => {
    const log = await streamLog(256 * 1024);
    // ~8 MB of events over many segments: far more than the socket buffers hold.
    for (let b = 0; b < 20; b++)
      await log.write(Array.from({ length: 1000 }, (_, k) => insert(b * 1000 + k, `k${k}`, 'w1', 300)));
    const dir = dirs[dirs.length - 1]!;
    const segmentFds = () =>
      readdirSync('/proc/self/fd').filter((fd) => {
        try {
          return (
            readlinkSync(`/proc/self/fd/${fd}`).startsWith(dir) &&
            !readlinkSync(`/proc/self/fd/${fd}`).endsWith('meta.json')
          );
        } catch {
          return false;
        }
      }).length;
    const openFds = () => readdirSync('/proc/self/fd').length;
    const before = { all: openFds(), segments: segmentFds() };
    let running: Promise<void> | undefined;
    let response: import('node:http').ServerResponse | undefined;
    const server: Server = createServer((_req, res) => {
      response = res;
      const t = sseTransport(res, () => undefined);
      running = new StreamSession(t, {
        log,
        filter: noFilter,
        workspaceColumn: 'workspace',
        after: FROM_START,
        maxBufferedBytes: 64 * 1024,
      }).run();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    // A client that reads the head and then nothing: the session soon waits for 'drain'. It is a
    // python socket with SO_RCVBUF pinned to 4 KiB, because Linux autotunes a Node client's receive
    // buffer on loopback up to tcp_rmem's max (32 MiB here), which can swallow the whole replay on a
    // busy machine; a pinned buffer turns autotuning off, so the 8 MB cannot fit in the kernel.
    const client = spawn('python3', ['-c', STALLED_CLIENT, String(port)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    stalledClients.push(client);
    await new Promise<void>((resolve, reject) => {
      client.once('error', reject);
      client.once('exit', (code) => reject(new Error(`stalled client exited ${code}`)));
      client.stdout.once('data', () => resolve()); // it prints once it has the response head
    });
    // Parked: more than a quarter of the client buffer is queued in the response, and the session
    // waits for it to fall to an eighth. Whether the segment being replayed still has its fd open at
    // that moment depends on where readline stopped, so the bound is "at most one segment open", and
    // the release is judged after the disconnect.
    const parked = () => (response?.writableLength ?? 0) > 16 * 1024;
    const deadline = Date.now() + 20_000;
    while (!parked() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(parked()).toBe(true);
    await new Promise((r) => setTimeout(r, 200));
    expect(parked()).toBe(true); // still parked: nothing reads
    const during = { all: openFds(), segments: segmentFds() };
    expect(during.segments).toBeLessThanOrEqual(before.segments + 1);
    client.kill('SIGKILL'); // the disconnect: the kernel closes its socket
    // The session's run() ends, and with it the replay and its file.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      running,
      new Promise(
        (_, reject) => (timer = setTimeout(() => reject(new Error('session never released')), 10_000)),
      ),
    ]).finally(() => clearTimeout(timer));
    while (segmentFds() > before.segments && Date.now() < deadline + 10_000)
      await new Promise((r) => setTimeout(r, 20));
    await new Promise<void>((r) => server.close(() => r()));
    const after = { all: openFds(), segments: segmentFds() };
    expect(after.segments).toBe(before.segments);
    process.stderr.write(
      `SSE release: open fds before ${before.all}, while parked ${during.all}, after disconnect ${after.all}; ` +
        `segment fds ${before.segments} -> ${during.segments} -> ${after.segments}\n`,
    );
  }, 60_000);
});

/**
 * Connects with a 4 KiB receive buffer, reads the response head and says so. Then it never reads
 * again, or, given a count, reads on after a second until it has seen that many events and prints it.
 */
const STALLED_CLIENT = `
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET / HTTP/1.1\\r\\nHost: x\\r\\nAccept: text/event-stream\\r\\n\\r\\n")
got = s.recv(1024)
print("head", flush=True)
if len(sys.argv) < 3:
    time.sleep(300)
    sys.exit(0)
time.sleep(1)
want, seen = int(sys.argv[2]), got.count(b"\\nid: ") + got.startswith(b"id: ")
tail = b""
while seen < want:
    chunk = s.recv(65536)
    if not chunk:
        break
    data = tail + chunk
    seen += data.count(b"\\nid: ")
    tail = data[-4:]
print(seen, flush=True)
`;

describe('StreamFilter (pure)', () => {
  const f = (workspaces: string[] | null, types: string[] | null = null) =>
    new StreamFilter(
      {
        tables: null,
        types: types ? new Set(types) : null,
        workspaces: workspaces ? new Set(workspaces) : null,
      },
      'workspace',
    );

  it('judges a move exactly from a whole old row (REPLICA IDENTITY FULL), with no memory', () => {
    const s = f(['w1']);
    const move = rowEvent(1, {
      op: 'u',
      key: 'a',
      before: { id: 'a', workspace: 'w1' },
      after: { id: 'a', workspace: 'w2' },
    }).event;
    expect(s.judge(move)).toBe('left');
    const back = rowEvent(2, {
      op: 'u',
      key: 'a',
      before: { id: 'a', workspace: 'w2' },
      after: { id: 'a', workspace: 'w1' },
    }).event;
    expect(s.judge(back)).toBe('send');
    expect(f(['w3']).judge(move)).toBe('skip');
    const fullDelete = rowEvent(3, { op: 'd', key: 'q', before: { id: 'q', workspace: 'w2' } }).event;
    expect(s.judge(fullDelete)).toBe('skip');
  });

  it('applies the type filter to what is sent: a departure is a delete', () => {
    const s = f(['w1'], ['row.delete']);
    expect(s.judge(insert(0, 'a', 'w1').event)).toBe('skip'); // not sent, but remembered
    expect(s.judge(rowEvent(1, { op: 'u', key: 'a', after: { id: 'a', workspace: 'w9' } }).event)).toBe(
      'left',
    );
  });

  it('remembers a bounded number of rows', () => {
    const s = new StreamFilter(
      { tables: null, types: null, workspaces: new Set(['w1']) },
      'workspace',
      undefined,
      100,
    );
    for (let i = 0; i < 1000; i++) s.judge(insert(i, `k${i}`, 'w1').event);
    expect(s.rememberedRows()).toBe(100);
  });

  it('without a workspace filter, every event of the admitted tables passes', () => {
    const s = new StreamFilter({ tables: new Set(['items']), types: null, workspaces: null }, 'workspace');
    expect(s.judge(rowEvent(0, { op: 'd', key: 'a', before: { id: 'a' } }).event)).toBe('send');
    expect(s.judge(rowEvent(1, { op: 't', table: 'other' }).event)).toBe('skip');
  });

  it('sends a schema.changed like a TRUNCATE: to a workspace session that may see the table', () => {
    const s = new StreamFilter(
      { tables: null, types: null, workspaces: new Set(['w1']) },
      'workspace',
      (_s, table) => table !== 'plain',
    );
    const schemaChanged = (table: string) => {
      const e = rowEvent(0, { op: 't', table }).event;
      return { ...e, type: 'schema.changed', data: { ...e.data, op: 's' as const } };
    };
    expect(s.judge(schemaChanged('items'))).toBe('send');
    expect(s.judge(schemaChanged('plain'))).toBe('skip');
  });
});
