import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, waitStreaming, type Daemon } from '../support/daemon.ts';
import { sql, testDatabase } from '../support/db.ts';
import {
  createReferenceSlot,
  currentWalLsn,
  diffAgainstReference,
  readEvents,
  recvLogical,
  waitForEvents,
} from '../support/recvlogical.ts';
import { setupWorkloadTables, startWorkload } from '../support/workload.ts';

/**
 * Found by the fault soak (docs/soak.md, seed 19): a leader that loses its lock without dying (its lock
 * session ended: a restart, a lost network) and gets it back after another daemon streamed meanwhile
 * must not write with what it knew before: its sinks' checkpoints are stale, and it wrote the other
 * daemon's events again (682 duplicates in the file, 442 in Kafka in 3 minutes).
 */
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Local TCP ports of a process's sockets (from /proc), to tell its backends from another's. */
function localPorts(pid: number): Set<number> {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      /* closed meanwhile */
    }
  }
  const ports = new Set<number>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6'])
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 9 && inodes.has(f[9]!)) ports.add(parseInt(f[1]!.split(':')[1]!, 16));
    }
  return ports;
}

/** The backend holding the leader lock, if it is a session of process `pid`. */
async function lockSessionOf(url: string, pid: number): Promise<number | undefined> {
  const rows = await sql<{ pid: number; client_port: number }>(
    url,
    `SELECT l.pid, a.client_port FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'advisory' AND l.granted AND a.datname = current_database()`,
  );
  const ports = localPorts(pid);
  return rows.find((r) => ports.has(r.client_port))?.pid;
}

describe('high availability: a leader that lost its lock gets it back', () => {
  let db: { url: string; drop: () => Promise<void> };
  const daemons: Daemon[] = [];
  beforeAll(async () => {
    db = await testDatabase('relead');
    await setupWorkloadTables(db.url);
  });
  afterAll(async () => {
    for (const d of daemons) {
      await d.kill('SIGKILL');
      d.proc.stdout?.destroy();
      d.proc.stderr?.destroy();
    }
    await db.drop();
  });

  it('never writes again what the other daemon wrote while it led', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'tagc-relead-')), 'events.ndjson');
    const args = [
      'extract-tasks',
      '--pg-url',
      db.url,
      '--slot',
      'relead_slot',
      '--sink',
      'file',
      '--file-path',
      file,
      '--serverPort',
      '0',
      '--stream-retention-bytes',
      '0',
    ];
    const a = runCli(args);
    daemons.push(a);
    await waitStreaming(a, 90_000);
    const b = runCli(args);
    daemons.push(b);
    while (!/standby/.test(b.stderr())) await sleep(50);
    await createReferenceSlot(db.url, 'relead_ref');
    const load = startWorkload(db.url, { rowsPerTx: 10, pauseMs: 5 });
    await sleep(1500);

    // End a's lock session (as a restart or the server's timeout would) until b holds the lock.
    expect(await lockSessionOf(db.url, a.proc.pid!)).toBeDefined();
    for (let i = 0; i < 100 && !/took over/.test(b.stderr()); i++) {
      const session = await lockSessionOf(db.url, a.proc.pid!);
      if (session !== undefined) await sql(db.url, 'SELECT pg_terminate_backend($1)', [session]);
      await sleep(300);
    }
    await waitStreaming(b, 90_000);
    await sleep(2000); // b writes
    await b.kill('SIGKILL');
    // a takes the lock back and sees that b led meanwhile: it stops (before the fix it streamed on with
    // its stale checkpoints) and its service manager starts it again
    let timer: NodeJS.Timeout | undefined;
    const exit = await Promise.race([
      a.exit,
      new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), 30_000))),
    ]);
    clearTimeout(timer);
    expect(exit?.code).toBe(7);
    expect(a.stderr()).toMatch(/E_LEADER_CHANGED/);
    const leader = runCli(args);
    daemons.push(leader);
    await waitStreaming(leader, 90_000);
    await sleep(1000);
    await load.stop();
    const expected = await recvLogical(
      db.url,
      'relead_ref',
      await currentWalLsn(db.url),
      new Set(['public.wl_a', 'public.wl_b']),
    );
    await waitForEvents(file, expected.length);
    await sleep(1000);
    expect((await leader.kill('SIGTERM')).code).toBe(0);
    const got = readEvents(file);
    expect(got.duplicates.slice(0, 5)).toEqual([]);
    expect(diffAgainstReference(expected, got.ids).missing).toEqual([]);
  }, 400_000);
});
