import { mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
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
    const server: Server = createServer((_req, res) => {
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
    // A client that reads the head and then nothing: the session soon waits for 'drain'.
    const req = request({ host: '127.0.0.1', port, path: '/' });
    const res = await new Promise<import('node:http').IncomingMessage>((r) => req.on('response', r).end());
    res.pause();
    const deadline = Date.now() + 10_000;
    while (segmentFds() === before.segments && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    const during = { all: openFds(), segments: segmentFds() };
    expect(during.segments).toBe(before.segments + 1);
    await new Promise((r) => setTimeout(r, 200)); // the session is parked on drain by now
    res.destroy();
    req.destroy();
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
});
