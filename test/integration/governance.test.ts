/** @services pg kafka pubsub */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Admin } from '@platformatic/kafka';
import { PubSub } from '@google-cloud/pubsub';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { runCli, waitStreaming, type Daemon } from '../support/daemon.ts';
import { sql, testDatabase } from '../support/db.ts';
import { freePort } from '../support/ports.ts';
import { readTopic } from '../support/kafka-read.ts';
import { Collector } from '../support/pubsub-read.ts';
import { readEvents } from '../support/recvlogical.ts';

/**
 * Governance rules end to end (docs/governance.md): the daemon with --config holding tables.public.<t>
 * rules and --mask-key-file, both plugins, file + Kafka + Pub/Sub sinks at once; every event of the
 * table checked for the rules. Dead letters against the real broker with a small max.message.bytes.
 */

const BROKERS = process.env.KAFKA_BROKERS;
const PUBSUB = process.env.PUBSUB_EMULATOR_HOST;
const PROJECT = 'tagc-test';
const KEY = 'gov-test-key';
const hmac = (text: string) => createHmac('sha256', KEY).update(text, 'utf8').digest('hex');
type Ev = { id: string; type: string; partitionkey: string; data: Record<string, any> };

const dir = mkdtempSync(join(tmpdir(), 'tagc-gov-'));
const keyFile = join(dir, 'mask.key');
writeFileSync(keyFile, `${KEY}\n`);

async function until<T>(
  what: string,
  d: Daemon,
  get: () => Promise<T | undefined> | T | undefined,
  ms = 60000,
) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await get();
    if (v !== undefined) return v;
    if (d.proc.exitCode !== null)
      throw new Error(`daemon exited ${d.proc.exitCode}: ${d.stderr().slice(-3000)}`);
    if (Date.now() > deadline) throw new Error(`${what}: timed out; ${d.stderr().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The checks of issue 21 on one event of public.customers. */
function checkEvent(e: Ev): void {
  const row = e.data.op === 'd' ? e.data.before : e.data.after;
  for (const r of [e.data.before, e.data.after]) {
    if (!r) continue;
    expect(r).not.toHaveProperty('ssn');
    if ('email' in r && r.email !== null) expect(r.email).toMatch(/^[0-9a-f]{64}$/);
  }
  if (e.data.op !== 'd') {
    expect(row.region).toBe('eu');
    expect(row.email).toBe(hmac(`user${row.id}@example.com`));
    expect(row.phone).toBe('[redacted]');
    expect(row.notes.length).toBeLessThanOrEqual(5);
    expect(e.partitionkey).toBe(String(row.tenant_id));
  }
}

describe.each(['wal2json', 'pgoutput'] as const)('governance rules, %s, file + Kafka + Pub/Sub', (plugin) => {
  let db: { url: string; drop: () => Promise<void> };
  let d: Daemon;
  const tag = `${plugin}_${process.pid}`;
  const file = join(dir, `${plugin}.ndjson`);
  const topic = `cdc.public.customers_${tag}`.replace(/_/g, '-');
  let collector: Collector;
  let base: string;

  beforeAll(async () => {
    if (!BROKERS || !PUBSUB)
      throw new Error('needs KAFKA_BROKERS and PUBSUB_EMULATOR_HOST (TEST_SERVICES=pg,kafka,pubsub)');
    db = await testDatabase(`gov_${plugin}`);
    await sql(
      db.url,
      `CREATE TABLE customers (id int PRIMARY KEY, tenant_id text NOT NULL, email text, phone text, notes text,
         ssn text, region text, status text)`,
    );
    await sql(db.url, `ALTER TABLE customers REPLICA IDENTITY FULL`);
    await sql(db.url, `CREATE TABLE other (id int PRIMARY KEY, ssn text)`);
    // The table's topic is compacted: a tombstone after each delete lets compaction drop the key.
    const admin = new Admin({ clientId: 'tagc-test-admin', bootstrapBrokers: [BROKERS] });
    await admin.createTopics({
      topics: [topic],
      partitions: 3,
      replicas: 1,
      configs: [{ name: 'cleanup.policy', value: 'compact' }],
    });
    await admin.close();
    const ps = new PubSub({ projectId: PROJECT });
    await ps.createTopic(topic);
    collector = await new Collector(PROJECT).subscribe(topic);
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const config = join(dir, `${plugin}.yaml`);
    writeFileSync(
      config,
      `tables:
  public.customers:
    columns: { exclude: [ssn] }
    mask: { email: hmac-sha256, phone: redact, notes: truncate(5) }
    filter: "row.region == 'eu' && row.status != 'draft'"
    key: tenant_id
    topic: "${topic.replace('customers', '{table}').replace('cdc.public', 'cdc.{schema}')}"
    tombstones: true
`,
    );
    d = runCli([
      'extract-tasks',
      '--pg-url',
      db.url,
      '--slot',
      `gov_${tag}`,
      '--plugin',
      plugin,
      '--publication',
      `gov_${tag}`,
      '--config',
      config,
      '--mask-key-file',
      keyFile,
      '--preset',
      'none',
      '--sink',
      'file',
      '--sink',
      'kafka',
      '--sink',
      'pubsub',
      '--file-path',
      file,
      '--kafka-brokers',
      BROKERS,
      '--kafka-checkpoint-topic',
      `gov-cp-${tag}`,
      '--topic',
      `gov-default-${tag}`,
      '--project-id',
      PROJECT,
      '--serverPort',
      String(port),
      '--stream-retention-bytes',
      '0',
    ]);
    await waitStreaming(d);
  });

  afterAll(async () => {
    await d?.kill();
    await collector?.close();
    await db?.drop();
  });

  it('carries only the governed view, moves rows across the filter, keys by the key column', async () => {
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    const ins = (id: number, region: string, status: string) =>
      c.query(
        `INSERT INTO customers VALUES ($1, $2, $3, '+33 6 12', 'some long notes', '123-45-6789', $4, $5)`,
        [id, `tenant-${id % 3}`, `user${id}@example.com`, region, status],
      );
    await ins(1, 'eu', 'active'); // in
    await ins(2, 'us', 'active'); // out
    await ins(3, 'eu', 'draft'); // out
    await ins(4, 'eu', 'active'); // in
    await c.query(`UPDATE customers SET status = 'active' WHERE id = 3`); // moves in: insert
    await c.query(`UPDATE customers SET region = 'us' WHERE id = 4`); // moves out: delete
    await c.query(`UPDATE customers SET notes = 'other notes' WHERE id = 2`); // stays out: nothing
    await c.query(`UPDATE customers SET notes = 'n2' WHERE id = 1`); // stays in: update
    await c.query(`DELETE FROM customers WHERE id = 2`); // out: nothing
    await c.query(`DELETE FROM customers WHERE id = 1`); // in: delete
    await c.query(`INSERT INTO other VALUES (1, 'visible')`);
    await c.end();

    const expected = [
      ['row.insert', 1],
      ['row.insert', 4],
      ['row.insert', 3],
      ['row.delete', 4],
      ['row.update', 1],
      ['row.delete', 1],
    ];
    const fromFile = await until('file events', d, () => {
      const all = readEvents(file).events as unknown as Ev[];
      return all.some((e) => e.data.table === 'other') ? all : undefined;
    });
    const customers = fromFile.filter((e) => e.data.table === 'customers');
    expect(customers.map((e) => [e.type, (e.data.after ?? e.data.before).id])).toEqual(expected);
    customers.forEach(checkEvent);
    expect(fromFile.find((e) => e.data.table === 'other')!.data.after).toEqual({ id: 1, ssn: 'visible' });

    const deletes = expected.filter(([type]) => type === 'row.delete').length;
    const kafka = await readTopic(BROKERS!, topic, { count: expected.length + deletes, quietMs: 4000 });
    // tombstones: right after each delete, in its partition, a null-value record with its key
    const byPartition = new Map<number, typeof kafka>();
    for (const m of kafka) byPartition.set(m.partition, [...(byPartition.get(m.partition) ?? []), m]);
    let tombstones = 0;
    for (const list of byPartition.values()) {
      list.sort((a, b) => Number(a.offset - b.offset));
      list.forEach((m, i) => {
        if (m.value === '') {
          tombstones++;
          const prev = JSON.parse(list[i - 1]!.value) as Ev;
          expect(prev.type).toBe('row.delete');
          expect(m.key).toBe(prev.partitionkey);
          expect(m.headers).toEqual({});
        } else if ((JSON.parse(m.value) as Ev).type === 'row.delete') expect(list[i + 1]?.value).toBe('');
      });
    }
    expect(tombstones).toBe(deletes);
    const kafkaEvents = kafka.filter((m) => m.value !== '').map((m) => ({ m, e: JSON.parse(m.value) as Ev }));
    // (one key's events in order within its partition; partitions interleave)
    expect(kafkaEvents.map(({ e }) => e.id).sort()).toEqual(customers.map((e) => e.id).sort());
    for (const { m, e } of kafkaEvents) {
      checkEvent(e);
      expect(m.key).toBe(e.partitionkey);
    }

    const got = await collector.waitFor(expected.length, { quietMs: 4000 });
    const psEvents = got.map((m) => JSON.parse(m.data) as Ev);
    expect(psEvents.map((e) => e.id).sort()).toEqual(customers.map((e) => e.id).sort());
    psEvents.forEach(checkEvent);

    // The governed events' JSON Schema: excluded columns absent, masked ones strings.
    const schemas = (await (await fetch(`${base}/v1/api/schemas`)).json()) as {
      tables: { table: string; governed: boolean; schema: any }[];
    };
    const cs = schemas.tables.find((t) => t.table === 'public.customers')!;
    expect(cs.governed).toBe(true);
    const props = cs.schema.properties.data.properties.after.anyOf[1].properties;
    expect(Object.keys(props).sort()).toEqual([
      'email',
      'id',
      'notes',
      'phone',
      'region',
      'status',
      'tenant_id',
    ]);
    expect(props.email).toEqual({ type: ['string', 'null'], pattern: '^[0-9a-f]{64}$' });
    expect(props.id).toEqual({ type: 'integer' });
    expect(schemas.tables.find((t) => t.table === 'public.other')!.governed).toBe(false);

    // The Snapshot route gives the same governed view: only row 3 is in the filter now.
    const lines = (await (await fetch(`${base}/v1/api/ws/Snapshot?table=customers`)).text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; key: string; after: Record<string, unknown> });
    const rows = lines.filter((l) => l.type === 'snapshot.row');
    expect(rows).toHaveLength(1);
    expect(rows[0]!.key).toBe('tenant-0');
    expect(rows[0]!.after).toEqual({
      id: 3,
      tenant_id: 'tenant-0',
      email: hmac('user3@example.com'),
      phone: '[redacted]',
      notes: 'some ',
      region: 'eu',
      status: 'active',
    });
  });
});

describe('dead letters against the real broker (topic max.message.bytes 4096)', () => {
  let db: { url: string; drop: () => Promise<void> };
  let d: Daemon;
  let base: string;
  const tag = `dl-${process.pid}`;
  const topic = `gov-small-${tag}`;
  const dlq = `gov-dlq-${tag}`;

  beforeAll(async () => {
    if (!BROKERS) throw new Error('needs KAFKA_BROKERS (TEST_SERVICES=pg,kafka)');
    db = await testDatabase('gov_dl');
    await sql(db.url, `CREATE TABLE docs (id int PRIMARY KEY, body text)`);
    await sql(db.url, `CREATE TABLE codes (id int PRIMARY KEY, code text)`);
    const admin = new Admin({ clientId: 'tagc-test-admin', bootstrapBrokers: [BROKERS] });
    await admin.createTopics({
      topics: [topic],
      partitions: 1,
      replicas: 1,
      configs: [{ name: 'max.message.bytes', value: '4096' }],
    });
    await admin.close();
    const config = join(dir, 'dl.yaml');
    writeFileSync(config, `tables:\n  public.codes:\n    filter: "int(row.code) > 0"\n`);
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    d = runCli([
      'extract-tasks',
      '--pg-url',
      db.url,
      '--slot',
      `gov_dl_${process.pid}`,
      '--preset',
      'none',
      '--config',
      config,
      '--sink',
      'kafka',
      '--kafka-brokers',
      BROKERS,
      '--topic',
      topic,
      '--kafka-checkpoint-topic',
      `gov-cp-${tag}`,
      '--kafka-compression',
      'none',
      '--dead-letter',
      `kafka:${dlq}`,
      '--serverPort',
      String(port),
      '--stream-retention-bytes',
      '0',
    ]);
    await waitStreaming(d);
  });

  afterAll(async () => {
    await d?.kill();
    await db?.drop();
  });

  it('sends an oversized event and a filter error to the dead letters, and goes on', async () => {
    const big = randomBytes(6000).toString('base64'); // incompressible, over 4096 bytes
    await sql(db.url, `INSERT INTO docs VALUES (1, 'small one')`);
    await sql(db.url, `INSERT INTO docs VALUES (2, $1)`, [big]);
    await sql(db.url, `INSERT INTO codes VALUES (1, 'not-a-number')`);
    await sql(db.url, `INSERT INTO codes VALUES (2, '7'), (3, '-1')`);
    await sql(db.url, `INSERT INTO docs VALUES (3, 'small three')`);

    const events = await readTopic(BROKERS!, topic, { count: 3, quietMs: 5000 });
    const ids = events.map((m) => JSON.parse(m.value) as Ev).map((e) => `${e.data.table}/${e.data.after.id}`);
    expect(ids.sort()).toEqual(['codes/2', 'docs/1', 'docs/3']);

    const letters = await readTopic(BROKERS!, dlq, {
      count: 2,
      quietMs: 5000,
      isolation: 'read_uncommitted',
    });
    expect(letters).toHaveLength(2);
    const bySink = Object.fromEntries(letters.map((l) => [l.headers.sink, l]));
    expect(bySink.kafka!.headers).toMatchObject({ topic, table: 'public.docs', type: 'row.insert' });
    expect(bySink.kafka!.headers.reason).toMatch(/MESSAGE_TOO_LARGE|RECORD_LIST_TOO_LARGE|max message size/i);
    expect(bySink.kafka!.headers.id).toMatch(/^[0-9A-F]+\/[0-9A-F]+\/0$/);
    expect(bySink.kafka!.headers.lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    expect(bySink.governance!.headers).toMatchObject({ table: 'public.codes', sink: 'governance' });
    expect(bySink.governance!.headers.reason).toMatch(/filter evaluation failed/);
    expect(bySink.governance!.headers.reason).not.toContain('not-a-number');
    expect(JSON.parse(bySink.governance!.value).data.after).toEqual({ id: 1, code: 'not-a-number' });

    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/tag_connector_dead_letters_total\{sink="kafka"\} 1/);
    expect(metrics).toMatch(/tag_connector_dead_letters_total\{sink="governance"\} 1/);
    expect(d.stderr()).not.toContain(big.slice(0, 40));
    expect(d.proc.exitCode).toBeNull();
  });
});

describe.each(['wal2json', 'pgoutput'] as const)('reload under load, %s, file + Kafka', (plugin) => {
  let db: { url: string; drop: () => Promise<void> };
  let d: Daemon;
  const tag = `rl-${plugin}-${process.pid}`;
  const file = join(dir, `reload-${plugin}.ndjson`);
  const config = join(mkdtempSync(join(dir, 'conf-')), 'tag-connector.yaml');
  const v1Topic = `gov-v1-${tag}`;
  const v2Topic = `gov-v2-${tag}`;
  const rules = (mask: string, extra = '') =>
    `tables:\n  public.items:\n    mask: { secret: ${mask} }\n${extra}`;

  beforeAll(async () => {
    if (!BROKERS) throw new Error('needs KAFKA_BROKERS (TEST_SERVICES=pg,kafka)');
    db = await testDatabase(`gov_rl_${plugin}`);
    await sql(db.url, `CREATE TABLE items (id int PRIMARY KEY, secret text NOT NULL)`);
    writeFileSync(config, rules('redact'));
    d = runCli([
      'extract-tasks',
      '--pg-url',
      db.url,
      '--slot',
      `gov_rl_${plugin}_${process.pid}`,
      '--plugin',
      plugin,
      '--publication',
      `gov_rl_${plugin}`,
      '--preset',
      'none',
      '--config',
      config,
      '--mask-key-file',
      keyFile,
      '--sink',
      'file',
      '--sink',
      'kafka',
      '--file-path',
      file,
      '--kafka-brokers',
      BROKERS,
      '--topic',
      v1Topic,
      '--kafka-checkpoint-topic',
      `gov-cp-${tag}`,
      '--serverPort',
      String(await freePort()),
      '--stream-retention-bytes',
      '0',
    ]);
    await waitStreaming(d);
  });

  afterAll(async () => {
    await d?.kill();
    await db?.drop();
  });

  it('swaps rules and routes between transactions: no event lost or doubled; an invalid config changes nothing', async () => {
    const PER_TX = 10;
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    let written = 0;
    let stop = false;
    // Transactions of PER_TX rows, back to back, until told to stop.
    const load = (async () => {
      for (let t = 0; !stop; t++) {
        const ids = Array.from({ length: PER_TX }, (_, k) => t * PER_TX + k + 1);
        await c.query(`INSERT INTO items SELECT g, 's' || g FROM unnest($1::int[]) g`, [ids]);
        written = (t + 1) * PER_TX;
      }
    })();
    const reloads = () => (d.stderr().match(/"msg":"config reloaded/g) ?? []).length;
    const waitLog = (re: RegExp, n: number) =>
      until(`log ${re}`, d, () => ((d.stderr().match(re) ?? []).length >= n ? true : undefined), 30000);
    const more = (n: number) => {
      const from = written;
      return until('more load', d, () => (written >= from + n ? true : undefined));
    };
    await more(300);
    // 1. the file changes: hmac masks and a table topic
    writeFileSync(config, rules('hmac-sha256', `    topic: "${v2Topic}"\n`));
    await waitLog(/"msg":"config reloaded/g, 1);
    await more(300);
    // 2. an invalid config (a filter that does not parse) and SIGHUP: refused, the rules stay
    writeFileSync(config, rules('truncate(2)', `    filter: "row.id >"\n`));
    d.proc.kill('SIGHUP');
    await waitLog(/"msg":"config reload refused/g, 1);
    expect(reloads()).toBe(1);
    await more(300);
    // 3. a valid one by SIGHUP: truncate, back to the default topic
    writeFileSync(config, rules('truncate(2)'));
    d.proc.kill('SIGHUP');
    await waitLog(/"msg":"config reloaded/g, 2);
    await more(300);
    stop = true;
    await load;
    await c.end();
    const total = written;

    const events = await until('all events in the file', d, () => {
      const all = readEvents(file).events as unknown as Ev[];
      return all.length >= total ? all : undefined;
    });
    expect(events).toHaveLength(total); // none doubled
    expect(new Set(events.map((e) => e.data.after.id)).size).toBe(total); // none lost
    // Each event under exactly one rule set, the sets in order, never two in one transaction.
    const version = (e: Ev) => {
      const { id, secret } = e.data.after;
      if (secret === '[redacted]') return 1;
      if (secret === hmac(`s${id}`)) return 2;
      if (secret === `s${id}`.slice(0, 2)) return 3;
      throw new Error(`event ${e.id}: secret under no rule set`);
    };
    const byTx = new Map<string, Set<number>>();
    let last = 1;
    for (const e of events) {
      const v = version(e);
      expect(v).toBeGreaterThanOrEqual(last);
      last = v;
      const txId = e.id.slice(0, e.id.lastIndexOf('/'));
      byTx.set(txId, (byTx.get(txId) ?? new Set()).add(v));
    }
    for (const vs of byTx.values()) expect(vs.size).toBe(1);
    expect(new Set(events.map(version))).toEqual(new Set([1, 2, 3]));

    // Kafka: each event once over the two topics. A sink takes new routes at the reload, the mapper new
    // rules at the next transaction: events queued under the old rules may go to the new topic, but
    // none mapped under the last rules (default topic again) went to the table topic.
    const [k1, k2] = await Promise.all([
      readTopic(BROKERS!, v1Topic, { quietMs: 5000 }),
      readTopic(BROKERS!, v2Topic, { quietMs: 5000 }),
    ]);
    const ids = (ms: typeof k1) => ms.map((m) => (JSON.parse(m.value) as Ev).id);
    expect([...ids(k1), ...ids(k2)].sort()).toEqual(events.map((e) => e.id).sort());
    expect(k2.length).toBeGreaterThan(0);
    for (const m of k2) expect(version(JSON.parse(m.value) as Ev)).not.toBe(3);
  });
});
