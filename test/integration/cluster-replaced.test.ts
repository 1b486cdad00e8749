import { afterAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, waitStreaming, type Daemon } from '../support/daemon.ts';
import { sql } from '../support/db.ts';
import { readTopic } from '../support/kafka-read.ts';
import { PG_BIN, PgCluster } from '../support/pg.ts';

/**
 * A deployment whose database is replaced under it (a restore, a rebuilt primary, a migration), with
 * the same address and slot name: its sinks' checkpoints are positions of the old cluster, and the
 * new cluster's LSNs may be lower, so resuming would skip its changes as "already delivered". The
 * daemon must stop with E_CHECKPOINT_MISMATCH (exit 5); with --reset-sink-checkpoints it must deliver
 * every change of the new cluster. Real clusters (initdb, pg_dump, pg_basebackup), real Kafka.
 */

const SLOT = 'tc_slot';
const work = mkdtempSync(join(tmpdir(), 'tagc-replaced-'));
const clusters: PgCluster[] = [];
const daemons: Daemon[] = [];

afterAll(async () => {
  for (const d of daemons) await d.kill('SIGKILL');
  for (const c of clusters) await c.destroy();
  rmSync(work, { recursive: true, force: true });
});

async function startCluster(port?: number, dir?: string): Promise<PgCluster> {
  const c = new PgCluster(port ? { port } : {}, dir);
  if (dir && port) c.port = port; // a restored data directory: its port is in its own postgresql.conf
  await c.start();
  clusters.push(c);
  return c;
}

/** The watched database `app` with one table, on a cluster. */
async function appDb(c: PgCluster, withTable = true): Promise<string> {
  await sql(c.url(), 'CREATE DATABASE app');
  const url = c.url('app');
  if (withTable) await sql(url, 'CREATE TABLE items (id bigserial PRIMARY KEY, v text NOT NULL)');
  return url;
}

/** Inserts rows `<tag>-<i>` for i in [from, from + n), 50 per transaction. */
async function insert(url: string, tag: string, from: number, n: number): Promise<void> {
  for (let i = from; i < from + n; i += 50) {
    await sql(url, `INSERT INTO items (v) SELECT $1 || '-' || g FROM generate_series($2::int, $3::int) g`, [
      tag,
      i,
      Math.min(i + 50, from + n) - 1,
    ]);
  }
}

function daemon(url: string, sinkArgs: string[], extra: string[] = []): Daemon {
  const d = runCli([
    'extract-tasks',
    '--plugin',
    'pgoutput',
    '--pg-url',
    url,
    '--slot',
    SLOT,
    '--serverPort',
    '0',
    '--stream-retention-dir',
    join(work, `retention-${url.replace(/\W/g, '')}`),
    ...sinkArgs,
    ...extra,
  ]);
  daemons.push(d);
  return d;
}

interface Line {
  id: string;
  type: string;
  data?: { after?: { v?: string }; origin?: { systemId: string } };
}
const parseLines = (text: string): Line[] =>
  text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Line);
const valuesOf = (lines: Line[], tag: string) =>
  lines.map((l) => l.data?.after?.v).filter((v): v is string => !!v && v.startsWith(`${tag}-`));
const expectedValues = (tag: string, n: number) => Array.from({ length: n }, (_, i) => `${tag}-${i}`);

async function until<T>(
  what: string,
  get: () => T | Promise<T>,
  ok: (v: T) => boolean,
  ms = 60_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await get();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The start that must refuse: exit 5, the mismatch named, the way out given, nothing delivered. */
async function expectMismatch(d: Daemon, why: RegExp): Promise<void> {
  const exit = await d.exit;
  const err = d.stderr();
  expect({ code: exit.code, said: why.test(err) }).toEqual({ code: 5, said: true });
  expect(err).toContain('E_CHECKPOINT_MISMATCH');
  expect(err).toContain('--reset-sink-checkpoints');
}

const systemIdOf = async (url: string) =>
  (await sql<{ id: string }>(url, 'SELECT system_identifier::text AS id FROM pg_control_system()'))[0]!.id;

describe('a cluster replaced under a file deployment (new initdb, same port, same slot name)', () => {
  it('stops with the mismatch; with --reset-sink-checkpoints delivers all changes of the new cluster', async () => {
    const file = join(work, 'file-events.ndjson');
    const a = await startCluster();
    const port = a.port;
    const urlA = await appDb(a);
    const sink = ['--sink', 'file', '--file-path', file];
    let d = daemon(urlA, sink);
    await waitStreaming(d);
    await insert(urlA, 'a', 0, 300);
    await until(
      '300 events of A',
      () => valuesOf(parseLines(readFileSync(file, 'utf8')), 'a'),
      (v) => v.length >= 300,
    );
    expect((await d.kill('SIGTERM')).code).toBe(0);
    const sysA = await systemIdOf(urlA);
    await a.destroy();

    const b = await startCluster(port);
    const urlB = await appDb(b);
    const sysB = await systemIdOf(urlB);
    expect(sysB).not.toBe(sysA);
    d = daemon(urlB, sink);
    await expectMismatch(
      d,
      new RegExp(`another cluster \\(system identifier ${sysA}, this server is ${sysB}\\)`),
    );
    // The changes the old daemon would have skipped: B's LSNs are below A's last id.
    await insert(urlB, 'b', 0, 500);
    await insert(urlB, 'sentinel', 0, 1);
    d = daemon(urlB, sink, ['--reset-sink-checkpoints']);
    await until(
      'the sentinel of B',
      () => valuesOf(parseLines(readFileSync(file, 'utf8')), 'sentinel'),
      (v) => v.length > 0,
    );
    expect((await d.kill('SIGTERM')).code).toBe(0);
    const lines = parseLines(readFileSync(file, 'utf8'));
    const b500 = valuesOf(lines, 'b');
    const markers = lines.filter((l) => l.type === 'tag_connector.sink_reset');
    console.log(
      `file: cluster A ${sysA} -> B ${sysB}: A delivered ${valuesOf(lines, 'a').length}; B wrote 500 + sentinel, ` +
        `delivered ${b500.length} + ${valuesOf(lines, 'sentinel').length}, duplicated ${b500.length - new Set(b500).size}; ` +
        `${markers.length} reset marker`,
    );
    expect(valuesOf(lines, 'a')).toEqual(expectedValues('a', 300));
    expect(b500).toEqual(expectedValues('b', 500));
    expect(markers).toHaveLength(1);
    expect(markers[0]!.data?.origin?.systemId).toBe(sysB);
    expect(d.stderr()).toMatch(/--reset-sink-checkpoints: this sink forgets its checkpoint/);

    // The reset is done: a plain restart resumes after it.
    d = daemon(urlB, sink);
    await waitStreaming(d);
    await insert(urlB, 'c', 0, 20);
    await until(
      '20 more',
      () => valuesOf(parseLines(readFileSync(file, 'utf8')), 'c'),
      (v) => v.length >= 20,
    );
    expect((await d.kill('SIGTERM')).code).toBe(0);
    expect(valuesOf(parseLines(readFileSync(file, 'utf8')), 'c')).toEqual(expectedValues('c', 20));
    await b.destroy();
  });
});

describe('a cluster replaced under a stdout deployment (the database migrated by pg_dump)', () => {
  it('stops on the checkpoint the dump brought along; with the reset it prints a marker and every change', async () => {
    const a = await startCluster();
    const port = a.port;
    const urlA = await appDb(a);
    const sink = ['--sink', 'stdout'];
    let d = daemon(urlA, sink);
    await waitStreaming(d);
    await insert(urlA, 'a', 0, 300);
    await until(
      '300 events of A',
      () => valuesOf(parseLines(d.stdout()), 'a'),
      (v) => v.length >= 300,
    );
    expect((await d.kill('SIGTERM')).code).toBe(0);
    // The migration: the whole database, state schema (and its checkpoints) included.
    const dump = execFileSync(join(PG_BIN, 'pg_dump'), ['-d', urlA], { maxBuffer: 64 << 20 });
    const sysA = await systemIdOf(urlA);
    await a.destroy();

    const b = await startCluster(port);
    const urlB = await appDb(b, false);
    execFileSync(join(PG_BIN, 'psql'), ['-q', '-v', 'ON_ERROR_STOP=1', '-d', urlB], {
      input: dump,
      stdio: 'pipe',
    });
    expect(
      (await sql(urlB, 'SELECT count(*)::int AS n FROM tag_connector.checkpoints'))[0]!.n,
    ).toBeGreaterThan(0);
    d = daemon(urlB, sink);
    await expectMismatch(d, new RegExp(`sink stdout: .*another cluster \\(system identifier ${sysA}`));
    await insert(urlB, 'b', 0, 500);
    d = daemon(urlB, sink, ['--reset-sink-checkpoints']);
    await until(
      '500 events of B',
      () => valuesOf(parseLines(d.stdout()), 'b'),
      (v) => v.length >= 500,
    );
    expect((await d.kill('SIGTERM')).code).toBe(0);
    const lines = parseLines(d.stdout());
    const resets = await sql<{ sink: string; reason: string }>(
      urlB,
      'SELECT sink, reason FROM tag_connector.sink_resets',
    );
    console.log(
      `stdout: B wrote 500, printed ${valuesOf(lines, 'b').length}, first line ${lines[0]!.type}; sink_resets: ` +
        resets.map((r) => r.sink).join(','),
    );
    expect(lines[0]!.type).toBe('tag_connector.sink_reset');
    expect(valuesOf(lines, 'b')).toEqual(expectedValues('b', 500));
    expect(resets.map((r) => r.sink)).toEqual(['stdout']);
    expect(resets[0]!.reason).toMatch(/another cluster/);
    await b.destroy();
  });
});

const brokers = () => {
  const b = process.env.KAFKA_BROKERS;
  if (!b) throw new Error('KAFKA_BROKERS is not set: run with TEST_SERVICES=pg,kafka (the broker is needed)');
  return b;
};
const kafkaSink = (topic: string) => [
  '--sink',
  'kafka',
  '--kafka-brokers',
  brokers(),
  '--kafka-replication-factor',
  '1',
  '--topic',
  topic,
];
/** The values of a tag in a topic, sorted as expectedValues (partitions interleave: no total order). */
const topicValues = async (topic: string, tag: string, count: number) =>
  valuesOf(
    (await readTopic(brokers(), topic, { count, quietMs: 2000 })).map((m) => JSON.parse(m.value) as Line),
    tag,
  ).sort((x, y) => Number(x.split('-')[1]) - Number(y.split('-')[1]));

describe('a cluster restored from a base backup under a Kafka deployment', () => {
  it('stops on the Kafka checkpoint of the lost slot life; with the reset delivers every change', async () => {
    const topic = `replaced-${Date.now().toString(36)}`;
    const a = await startCluster();
    const port = a.port;
    const urlA = await appDb(a);
    // The backup: taken before the daemon ever ran (its slot is not in a base backup anyway).
    const backup = mkdtempSync(join(tmpdir(), 'tagc-pg-restored-'));
    execFileSync('chown', ['postgres:postgres', backup]);
    execFileSync('runuser', [
      '-u',
      'postgres',
      '--',
      join(PG_BIN, 'pg_basebackup'),
      '-D',
      join(backup, 'data'),
      '-d',
      a.url(),
      '-X',
      'stream',
    ]);
    let d = daemon(urlA, kafkaSink(topic));
    await waitStreaming(d, 60_000);
    await insert(urlA, 'a', 0, 300);
    await until(
      '300 events of A in Kafka',
      () => topicValues(topic, 'a', 300),
      (v) => v.length >= 300,
    );
    expect((await d.kill('SIGTERM')).code).toBe(0);
    await a.stop();

    const b = await startCluster(port, backup);
    const urlB = b.url('app');
    expect(existsSync(join(backup, 'data', 'PG_VERSION'))).toBe(true);
    d = daemon(urlB, kafkaSink(topic));
    await expectMismatch(d, /sink kafka: .*slot tc_slot was dropped and created again/);
    await insert(urlB, 'b', 0, 500);
    d = daemon(urlB, kafkaSink(topic), ['--reset-sink-checkpoints']);
    const b500 = await until(
      '500 events of B in Kafka',
      () => topicValues(topic, 'b', 800),
      (v) => v.length >= 500,
    );
    expect((await d.kill('SIGTERM')).code).toBe(0);
    const all = await topicValues(topic, 'a', 800);
    console.log(
      `kafka: restored cluster, same system id: A delivered ${all.length}, B wrote 500, delivered ${b500.length}, ` +
        `duplicated ${b500.length - new Set(b500).size} (read_committed)`,
    );
    expect(all).toEqual(expectedValues('a', 300));
    expect(b500).toEqual(expectedValues('b', 500));
    await b.destroy();
    await a.destroy();
  }, 300_000);
});

describe('two deployments sharing one Kafka cluster with one slot name', () => {
  it('both deliver everything, across restarts, neither fencing nor skipping the other', async () => {
    const run = Date.now().toString(36);
    const [c1, c2] = [await startCluster(), await startCluster()];
    const urls = [await appDb(c1), await appDb(c2)];
    const topics = [`shared1-${run}`, `shared2-${run}`];
    const start = (i: number) => daemon(urls[i]!, kafkaSink(topics[i]!));
    let ds = [start(0), start(1)];
    for (const d of ds) await waitStreaming(d, 60_000);
    await Promise.all([insert(urls[0]!, 'one', 0, 300), insert(urls[1]!, 'two', 0, 300)]);
    await until(
      '300 each',
      () => topicValues(topics[0]!, 'one', 300),
      (v) => v.length >= 300,
    );
    await until(
      '300 each',
      () => topicValues(topics[1]!, 'two', 300),
      (v) => v.length >= 300,
    );
    // Restart both: each must find its own checkpoint, not the other's.
    for (const d of ds) expect((await d.kill('SIGTERM')).code).toBe(0);
    ds = [start(0), start(1)];
    for (const d of ds) await waitStreaming(d, 60_000);
    await Promise.all([insert(urls[0]!, 'one', 300, 200), insert(urls[1]!, 'two', 300, 200)]);
    const one = await until(
      '500',
      () => topicValues(topics[0]!, 'one', 500),
      (v) => v.length >= 500,
    );
    const two = await until(
      '500',
      () => topicValues(topics[1]!, 'two', 500),
      (v) => v.length >= 500,
    );
    for (const d of ds) expect((await d.kill('SIGTERM')).code).toBe(0);
    const fenced = ds.filter((d) => /FENCED|fenced/.test(d.stderr())).length;
    console.log(
      `shared kafka: deployment 1 wrote 500, delivered ${one.length}; deployment 2 wrote 500, delivered ` +
        `${two.length}; ${fenced} daemons saw fencing`,
    );
    expect(one).toEqual(expectedValues('one', 500));
    expect(two).toEqual(expectedValues('two', 500));
    expect(fenced).toBe(0);
  }, 300_000);
});
