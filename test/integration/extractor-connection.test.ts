import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { PgReplicationSource } from '../../src/extractor/replication/replication-source.ts';
import { runCli, waitStreaming, type Daemon } from '../support/daemon.ts';
import { createDatabase, PgCluster } from '../support/pg.ts';
import { freePort } from '../support/ports.ts';
import { readEvents, waitForEvents } from '../support/recvlogical.ts';

async function exec(url: string, text: string): Promise<pg.QueryResult> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await c.query(text);
  } finally {
    await c.end();
  }
}

function daemon(url: string, slot: string, file: string, port = 0, extra: string[] = []): Daemon {
  return runCli([
    ...extra,
    'extract-tasks',
    '--pg-url',
    url,
    '--slot',
    slot,
    '--sink',
    'file',
    '--file-path',
    file,
    '--serverPort',
    String(port),
  ]);
}

const eventsFile = () => join(mkdtempSync(join(tmpdir(), 'tagc-conn-')), 'events.ndjson');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

describe('the replication connection lifecycle against a real server', () => {
  // A private cluster: it is restarted, and one role authenticates by password (scram), which the
  // shared cluster (trust) does not do.
  const cluster = new PgCluster();
  beforeAll(async () => {
    await cluster.init();
    const hba = join(cluster.dir, 'data', 'pg_hba.conf');
    writeFileSync(
      hba,
      `host all rotuser 127.0.0.1/32 scram-sha-256\nhost all startuser 127.0.0.1/32 scram-sha-256\n${readFileSync(hba, 'utf8')}`,
    );
    await cluster.start();
  });
  afterAll(async () => {
    await cluster.destroy();
  });
  /** Starts the cluster unless it runs (a test that stops it leaves it up for the next). */
  const ensureUp = async () => {
    if (!existsSync(join(cluster.dir, 'data', 'postmaster.pid'))) await cluster.start();
  };

  it('waits at start while the slot is still active for another reader (55006), then streams', async () => {
    const url = await createDatabase(cluster.url(), 'busy');
    await exec(url, `CREATE TABLE items (id int PRIMARY KEY, v text)`);
    await exec(url, `SELECT pg_create_logical_replication_slot('busy_slot', 'wal2json')`);
    // Another reader holds the slot (as a dying daemon's walsender does for a moment).
    const holder = new PgReplicationSource(
      { connectionString: url },
      { slot: 'busy_slot', options: { 'format-version': '2' } },
    );
    await holder.start({ onData: () => undefined, onKeepalive: () => undefined, onClose: () => undefined });
    const file = eventsFile();
    const d = daemon(url, 'busy_slot', file);
    try {
      await until(() => /slot still held by a previous reader; waiting/.test(d.stderr()), 'the wait');
      expect(d.proc.exitCode).toBeNull();
      await holder.stop();
      await waitStreaming(d);
      await exec(url, `INSERT INTO items VALUES (1, 'after the takeover')`);
      await waitForEvents(file, 1);
      expect(readEvents(file).ids).toHaveLength(1);
    } finally {
      await holder.stop();
      const exit = await d.kill('SIGTERM');
      expect(exit.code).toBe(0);
    }
  }, 90_000);

  it('a change of a table not cached yet, arriving as PostgreSQL restarts, waits for the catalog', async () => {
    const url = await createDatabase(cluster.url(), 'uncached');
    await exec(
      url,
      `CREATE TABLE warm (id int PRIMARY KEY); CREATE TABLE fresh (id int PRIMARY KEY, v text)`,
    );
    const file = eventsFile();
    const d = daemon(url, 'uncached_slot', file);
    try {
      await waitStreaming(d);
      await exec(url, `INSERT INTO warm VALUES (1)`);
      await waitForEvents(file, 1);
      expect(readEvents(file).ids).toHaveLength(1);
      // Freeze the daemon, commit a change of the uncached table (its bytes wait in the daemon's
      // socket), stop the server, then let the daemon run: it decodes the change and must look the
      // table up while nothing answers.
      d.proc.kill('SIGSTOP');
      await exec(url, `INSERT INTO fresh VALUES (1, 'in the window'), (2, 'in the window')`);
      await sleep(1000); // the walsender decodes flushed WAL only (wal_writer_delay 200 ms)
      // Immediate: a fast shutdown would wait (wal_sender_timeout) for the frozen daemon to confirm.
      await cluster.stop('immediate');
      d.proc.kill('SIGCONT');
      await until(() => /catalog query failed; retrying/.test(d.stderr()), 'a failed catalog query');
      await sleep(1000);
      expect(d.proc.exitCode).toBeNull();
      await cluster.start();
      await exec(url, `INSERT INTO fresh VALUES (3, 'after the restart')`);
      await waitForEvents(file, 4);
      const got = readEvents(file);
      expect(got.duplicates).toEqual([]);
      const fresh = readFileSync(file, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { subject: string; data: { table: string } })
        .filter((e) => e.data.table === 'fresh');
      expect(fresh).toHaveLength(3);
    } finally {
      if (d.proc.exitCode === null) d.proc.kill('SIGCONT');
      const exit = await d.kill('SIGTERM');
      if (exit.code !== 0) console.log(d.stderr().slice(-3000));
      expect(exit.code).toBe(0);
    }
    expect(d.stderr()).not.toMatch(/outside a transaction|fatal error/);
  }, 120_000);

  it('a password rotated while running: a clear error, /readyz 503, the daemon keeps trying', async () => {
    const url = await createDatabase(cluster.url(), 'rotate');
    await exec(cluster.url(), `CREATE ROLE rotuser LOGIN REPLICATION PASSWORD 'old-secret'`);
    const name = new URL(url).pathname.slice(1);
    await exec(url, `ALTER DATABASE ${name} OWNER TO rotuser; ALTER SCHEMA public OWNER TO rotuser`);
    await exec(url, `CREATE TABLE items (id int PRIMARY KEY); ALTER TABLE items OWNER TO rotuser`);
    const appUrl = new URL(url);
    appUrl.username = 'rotuser';
    appUrl.password = 'old-secret';
    const port = await freePort();
    const file = eventsFile();
    const d = daemon(appUrl.toString(), 'rotate_slot', file, port);
    const readyz = async () => {
      const res = await fetch(`http://127.0.0.1:${port}/readyz`);
      return { status: res.status, body: (await res.json()) as { pipeline: string; reason?: string } };
    };
    try {
      await waitStreaming(d);
      expect((await readyz()).status).toBe(200);
      await exec(cluster.url(), `ALTER ROLE rotuser PASSWORD 'new-secret'`);
      // Sessions already open keep working: only a new connection meets the new password.
      await exec(url, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'rotuser'`);
      let last: Awaited<ReturnType<typeof readyz>> | undefined;
      await until(async () => {
        last = await readyz();
        return last.status === 503 && /rotated/.test(last.body.reason ?? '');
      }, 'readyz to report the refused credentials');
      expect(last!.body.pipeline).toBe('reconnecting');
      expect(last!.body.reason).toMatch(/E_PG_AUTH.*password authentication failed for user "rotuser"/);
      expect(d.stderr()).toMatch(/E_PG_AUTH/);
      await sleep(2000);
      expect(d.proc.exitCode).toBeNull(); // waits for the operator; never a crash loop
      expect((await readyz()).status).toBe(503);
    } finally {
      const exit = await d.kill('SIGTERM');
      expect(exit.code).toBe(0);
    }
    expect(d.stderr()).not.toContain('old-secret');
  }, 120_000);
  it('PostgreSQL down at start: waits with /readyz 503 naming why, then streams once it is up', async () => {
    const url = await createDatabase(cluster.url(), 'late');
    await exec(url, `CREATE TABLE items (id int PRIMARY KEY)`);
    await cluster.stop('fast');
    const port = await freePort();
    const file = eventsFile();
    const d = daemon(url, 'late_slot', file, port);
    try {
      await until(() => /PostgreSQL not reachable at start; retrying/.test(d.stderr()), 'the start-up wait');
      let ready: { status: number; body: { status: string; reason?: string } } | undefined;
      await until(async () => {
        const res = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
        if (!res) return false;
        ready = { status: res.status, body: (await res.json()) as { status: string; reason?: string } };
        return true;
      }, 'the API while waiting');
      expect(ready!.status).toBe(503);
      expect(ready!.body.reason).toMatch(/ECONNREFUSED/);
      await sleep(1500);
      expect(d.proc.exitCode).toBeNull();
      await cluster.start();
      await waitStreaming(d, 60_000);
      await exec(url, `INSERT INTO items VALUES (1)`);
      await waitForEvents(file, 1);
      expect(readEvents(file).ids).toHaveLength(1);
      expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
    } finally {
      await ensureUp();
      const exit = await d.kill('SIGTERM');
      expect(exit.code).toBe(0);
    }
  }, 120_000);

  it('PostgreSQL that stays away: exit 1 after --startup-wait-ms, naming the server; SIGTERM ends a wait at once', async () => {
    const url = await createDatabase(cluster.url(), 'away');
    await cluster.stop('fast');
    try {
      const started = Date.now();
      const d = daemon(url, 'away_slot', eventsFile(), 0, ['--startup-wait-ms', '2000']);
      const exit = await d.exit;
      expect(exit.code).toBe(1);
      expect(Date.now() - started).toBeGreaterThanOrEqual(2000);
      expect(d.stderr()).toMatch(/PostgreSQL not reachable at start; retrying/);
      expect(d.stderr()).toMatch(/PostgreSQL \(.*\): .*ECONNREFUSED/);

      const waiting = daemon(url, 'away_slot', eventsFile());
      await until(() => /not reachable at start/.test(waiting.stderr()), 'the start-up wait');
      const stopped = await waiting.kill('SIGTERM');
      expect(stopped.code).toBe(0);
    } finally {
      await ensureUp();
    }
  }, 120_000);

  it('refused credentials at start fail at once (no wait: the password is read once)', async () => {
    const url = await createDatabase(cluster.url(), 'badpw');
    await exec(cluster.url(), `CREATE ROLE startuser LOGIN REPLICATION PASSWORD 'right'`);
    const appUrl = new URL(url);
    appUrl.username = 'startuser';
    appUrl.password = 'wrong';
    const d = daemon(appUrl.toString(), 'badpw_slot', eventsFile());
    const exit = await d.exit;
    expect(exit.code).toBe(1);
    expect(d.stderr()).toMatch(/password authentication failed for user "startuser"/);
    expect(d.stderr()).not.toMatch(/not reachable at start/);
    expect(d.stderr()).not.toContain('wrong');
  }, 60_000);
});
