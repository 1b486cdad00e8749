/** @services pg kafka registry */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Admin } from '@platformatic/kafka';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { avroType, SchemaRegistryClient, unframe, type AvroType } from '../../src/sinks/avro/index.ts';
import { runCli, waitStreaming, type Daemon } from '../support/daemon.ts';
import { sql, testDatabase } from '../support/db.ts';
import { readTopic, type ReadMessage } from '../support/kafka-read.ts';
import { freePort } from '../support/ports.ts';
import { requireService } from '../support/require-service.ts';

/**
 * Avro values with a real schema registry (docs/governance.md "Avro"): the daemon streams a governed
 * table to Kafka as Avro in Confluent's framing; the test reads the records back, looks each schema up
 * in Apicurio Registry (its Confluent-compatible API) by the id in the record and decodes the values to
 * exactly the expected rows. An ALTER TABLE gives a new schema version; an incompatible one stops the
 * daemon with an error naming the table.
 */

const dir = mkdtempSync(join(tmpdir(), 'tagc-avro-'));

type Decoded = {
  id: string;
  type: string;
  xid: bigint;
  partitionkey: string;
  data: { op: string; before: Record<string, unknown> | null; after: Record<string, unknown> | null };
};

async function until<T>(what: string, d: Daemon, get: () => Promise<T | undefined>, ms = 60000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await get();
    if (v !== undefined) return v;
    if (d.proc.exitCode !== null)
      throw new Error(`daemon exited ${d.proc.exitCode}: ${d.stderr().slice(-3000)}`);
    if (Date.now() > deadline) throw new Error(`${what}: timed out; ${d.stderr().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

/** Event ids (`<commitLsn>/<seq>`) in stream order. */
function order(a: string, b: string): number {
  const pos = (id: string) => {
    const [hi, lo, seq] = id.split('/');
    return ((BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`)) * 1_000_000n + BigInt(seq!);
  };
  const d = pos(a) - pos(b);
  return d < 0n ? -1 : d > 0n ? 1 : 0;
}

/** avsc's decoded records (class instances) as plain objects, Buffers and BigInts kept. */
function plain(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(plain);
  if (v === null || typeof v !== 'object' || Buffer.isBuffer(v)) return v;
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
}

/** Each record's value decoded with the schema the registry holds under the record's id. */
async function decodeAll(registry: SchemaRegistryClient, records: ReadMessage[]) {
  const types = new Map<number, AvroType>();
  const out: { id: number; event: Decoded; m: ReadMessage }[] = [];
  for (const m of records) {
    const { id, body } = unframe(m.valueBytes);
    if (!types.has(id)) types.set(id, avroType(await registry.schemaById(id)));
    out.push({ id, event: plain(types.get(id)!.fromBuffer(body)) as Decoded, m });
  }
  return out;
}

async function startDaemon(
  db: string,
  plugin: string,
  tag: string,
  config: string,
  registryUrl: string,
  brokers: string,
  extra: string[] = [],
) {
  const port = await freePort();
  return runCli([
    'extract-tasks',
    '--pg-url',
    db,
    '--slot',
    `avro_${tag}`,
    '--publication',
    `avro_${tag}`,
    '--plugin',
    plugin,
    '--preset',
    'none',
    '--config',
    config,
    '--sink',
    'kafka',
    '--kafka-brokers',
    brokers,
    '--kafka-checkpoint-topic',
    `avro-cp-${tag}`,
    '--topic',
    `avro-default-${tag}`,
    '--schema-registry',
    registryUrl,
    '--serverPort',
    String(port),
    '--stream-retention-bytes',
    '0',
    ...extra,
  ]);
}

describe.each(['wal2json', 'pgoutput'] as const)('Avro values with Apicurio Registry, %s', (plugin) => {
  let brokers: string;
  let registryUrl: string;
  let registry: SchemaRegistryClient;
  let db: { url: string; drop: () => Promise<void> };
  let d: Daemon;
  const tag = `${plugin}-${process.pid}`;
  const topic = `avro.public.items-${tag}`;
  const subject = `${topic}-value`;

  beforeAll(async () => {
    brokers = requireService('kafka');
    registryUrl = requireService('registry');
    registry = new SchemaRegistryClient({ url: registryUrl });
    db = await testDatabase(`avro_${plugin}`);
    await sql(
      db.url,
      `CREATE TABLE items (id int PRIMARY KEY, big bigint NOT NULL, price numeric(10,2), ratio float8,
         flag boolean, doc jsonb, blob bytea, at timestamptz, tags text[], email text, ssn text)`,
    );
    const admin = new Admin({ clientId: 'tagc-test-admin', bootstrapBrokers: [brokers] });
    await admin.createTopics({ topics: [topic], partitions: 2, replicas: 1 });
    await admin.close();
    // Apicurio checks nothing unless told: the subject wants new versions readable with old data
    await registry.setCompatibility('BACKWARD', subject);
    const config = join(dir, `${plugin}.yaml`);
    writeFileSync(
      config,
      `tables:
  public.items:
    columns: { exclude: [ssn] }
    mask: { email: redact }
    topic: "avro.{schema}.{table}-${tag}"
    tombstones: true
`,
    );
    d = await startDaemon(db.url, plugin, tag.replace(/-/g, '_'), config, registryUrl, brokers);
    await waitStreaming(d);
  });

  afterAll(async () => {
    await d?.kill();
    await db?.drop();
  });

  it('writes Avro in Confluent framing that decodes, by the registry’s schema, to exactly the rows', async () => {
    await sql(
      db.url,
      `INSERT INTO items VALUES
         (1, 9007199254740993, 12.50, 'NaN', true, '{"a":[1,"x"]}', '\\x0102ff', '2026-12-06 01:02:03.456789+00',
          '{a,NULL,"b c"}', 'a@b.c', '123-45-6789'),
         (2, -1, NULL, 1.5, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`,
    );
    await sql(db.url, `UPDATE items SET flag = false WHERE id = 1`);
    await sql(db.url, `DELETE FROM items WHERE id = 2`);
    // (the schema is derived from the catalog when a table's first event is written: wait for it)
    await until('four records and a tombstone', d, async () => {
      const got = await readTopic(brokers, topic, { count: 5, quietMs: 1000 });
      return got.length >= 5 ? got : undefined;
    });
    // a changed table: a new column, a schema.changed event, a new (compatible) schema version
    await sql(db.url, `ALTER TABLE items ADD COLUMN note text`);
    await sql(db.url, `INSERT INTO items (id, big, note) VALUES (3, 3, 'new column')`);

    const all = await until('six records and a tombstone', d, async () => {
      const got = await readTopic(brokers, topic, { count: 7, quietMs: 2000 });
      return got.length >= 7 ? got : undefined;
    });
    expect(all).toHaveLength(7);
    // the delete's tombstone: its key, a null value, no headers, right after it in its partition
    const stones = all.filter((m) => m.valueBytes.length === 0);
    expect(stones).toHaveLength(1);
    const records = all.filter((m) => m.valueBytes.length > 0);
    const decoded = await decodeAll(registry, records);
    const del = decoded.find((x) => x.event.type === 'row.delete')!;
    expect(stones[0]!.key).toBe(del.m.key);
    expect(stones[0]!.headers).toEqual({});
    expect(stones[0]!.partition).toBe(del.m.partition);
    expect(stones[0]!.offset).toBe(del.m.offset + 1n);
    decoded.sort((a, b) => order(a.event.id, b.event.id));
    const nulls = {
      price: null,
      ratio: null,
      flag: null,
      doc: null,
      blob: null,
      at: null,
      tags: null,
      email: null,
    };
    const row1 = {
      id: 1,
      big: 9007199254740993n,
      price: '12.50',
      // wal2json itself prints a float's NaN as null; pgoutput's text gives NaN, which Avro's double has
      ratio: plugin === 'wal2json' ? null : NaN,
      flag: true,
      doc: '{"a":[1,"x"]}',
      blob: Buffer.from([1, 2, 255]),
      at: '2026-12-06T01:02:03.456789+00:00',
      tags: ['a', null, 'b c'],
      email: '[redacted]',
    };
    expect(decoded.map((x) => [x.event.type, x.event.data.op])).toEqual([
      ['row.insert', 'c'],
      ['row.insert', 'c'],
      ['row.update', 'u'],
      ['row.delete', 'd'],
      ['schema.changed', 's'],
      ['row.insert', 'c'],
    ]);
    expect(decoded[0]!.event.data.after).toEqual(row1);
    expect(decoded[1]!.event.data.after).toEqual({ ...nulls, id: 2, big: -1n, ratio: 1.5 });
    expect(decoded[2]!.event.data.after).toEqual({ ...row1, flag: false });
    expect(decoded[3]!.event.data.after).toBeNull();
    expect(decoded[3]!.event.data.before).toMatchObject({ id: 2 });
    // the columns before and after, governed (ssn excluded, email masked), as JSON text in Avro
    const change = decoded[4]!.event.data as unknown as { changed: string[]; columns: string };
    expect(change.changed).toEqual(['note']);
    const columns = JSON.parse(change.columns) as Record<string, { name: string; mask?: string }[]>;
    expect(columns.after!.map((c) => c.name)).toEqual([...columns.before!.map((c) => c.name), 'note']);
    expect(columns.after!.find((c) => c.name === 'email')?.mask).toBe('redact');
    expect(JSON.stringify(columns)).not.toContain('ssn');
    expect(decoded[5]!.event.data.after).toEqual({ ...nulls, id: 3, big: 3n, note: 'new column' });
    // excluded columns absent from the schema too
    for (const x of decoded)
      for (const r of [x.event.data.before, x.event.data.after]) if (r) expect(r).not.toHaveProperty('ssn');

    // the first four under version 1, the schema.changed event and the last under version 2 of <topic>-value
    const ids = decoded.map((x) => x.id);
    expect(new Set(ids.slice(0, 4)).size).toBe(1);
    expect(ids[4]).not.toBe(ids[0]);
    expect(ids[5]).toBe(ids[4]);
    const versions = (await (await fetch(`${registryUrl}/subjects/${subject}/versions`)).json()) as number[];
    expect(versions).toEqual([1, 2]);
    const v2 = (await (await fetch(`${registryUrl}/subjects/${subject}/versions/2`)).json()) as {
      id: number;
    };
    expect(v2.id).toBe(ids[4]);

    // keys and headers as for JSON events: the partition key, the CloudEvents attributes
    for (const x of decoded) {
      expect(x.m.key).toBe(x.event.partitionkey);
      expect(x.m.headers.ce_id).toBe(x.event.id);
      expect(x.m.headers['content-type']).toBe('application/vnd.confluent.avro');
    }
  });
});

describe('Avro: the registry refuses an incompatible change', () => {
  let db: { url: string; drop: () => Promise<void> };
  let d: Daemon;
  const tag = `incompat-${process.pid}`;
  const topic = `avro.public.widgets-${tag}`;

  beforeAll(async () => {
    const brokers = requireService('kafka');
    const registryUrl = requireService('registry');
    db = await testDatabase('avro_incompat');
    await sql(db.url, `CREATE TABLE widgets (id int PRIMARY KEY, qty int)`);
    const admin = new Admin({ clientId: 'tagc-test-admin', bootstrapBrokers: [brokers] });
    await admin.createTopics({ topics: [topic], partitions: 1, replicas: 1 });
    await admin.close();
    await new SchemaRegistryClient({ url: registryUrl }).setCompatibility('BACKWARD', `${topic}-value`);
    const config = join(dir, 'incompat.yaml');
    writeFileSync(config, `tables:\n  public.widgets:\n    topic: "avro.{schema}.{table}-${tag}"\n`);
    d = await startDaemon(db.url, 'wal2json', tag.replace(/-/g, '_'), config, registryUrl, brokers);
    await waitStreaming(d);
  });

  afterAll(async () => {
    await d?.kill();
    await db?.drop();
  });

  it('stops the daemon with an error naming the table, never falling back to JSON', async () => {
    await sql(db.url, `INSERT INTO widgets VALUES (1, 5)`);
    const first = await until('the first record', d, async () => {
      const got = await readTopic(requireService('kafka'), topic, { count: 1, quietMs: 1500 });
      return got.length ? got : undefined;
    });
    expect(unframe(first[0]!.valueBytes).id).toBeGreaterThan(0);
    // int → text: readers of the new schema cannot read the old data (BACKWARD refuses it)
    await sql(db.url, `ALTER TABLE widgets ALTER COLUMN qty TYPE text USING qty::text`);
    await sql(db.url, `INSERT INTO widgets VALUES (2, 'many')`);
    const exit = await Promise.race([
      d.exit,
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(d.stderr().slice(-3000))), 60000)),
    ]);
    expect(exit.code).toBe(1);
    expect(d.stderr()).toMatch(
      /public\.widgets: the schema registry refused its Avro schema under avro\.public\.widgets-.*-value/,
    );
    expect(d.stderr()).not.toContain('many');
    // nothing else reached the topic: the refused event is not there as JSON or otherwise
    const all = await readTopic(requireService('kafka'), topic, { quietMs: 1500 });
    expect(all).toHaveLength(1);
  });
});

describe('Avro: an event its schema cannot write goes to the dead letters', () => {
  let db: { url: string; drop: () => Promise<void> };
  let d: Daemon;
  const tag = `misfit-${process.pid}`;
  const topic = `avro.public.grids-${tag}`;
  const letters = join(dir, 'avro-dead-letters.ndjson');

  beforeAll(async () => {
    const brokers = requireService('kafka');
    const registryUrl = requireService('registry');
    db = await testDatabase('avro_misfit');
    await sql(db.url, `CREATE TABLE grids (id int PRIMARY KEY, cells int[])`);
    const admin = new Admin({ clientId: 'tagc-test-admin', bootstrapBrokers: [brokers] });
    await admin.createTopics({ topics: [topic], partitions: 1, replicas: 1 });
    await admin.close();
    const config = join(dir, 'misfit.yaml');
    writeFileSync(config, `tables:\n  public.grids:\n    topic: "avro.{schema}.{table}-${tag}"\n`);
    // credentials in the URL go as HTTP Basic (Apicurio here has no auth and ignores them)
    const withUser = registryUrl.replace('http://', 'http://tagc:pw%40x@');
    d = await startDaemon(db.url, 'pgoutput', tag.replace(/-/g, '_'), config, withUser, brokers, [
      '--dead-letter',
      `file:${letters}`,
    ]);
    await waitStreaming(d);
  });

  afterAll(async () => {
    await d?.kill();
    await db?.drop();
  });

  it('dead-letters a two-dimensional array naming the column, and the stream goes on in Avro', async () => {
    await sql(db.url, `INSERT INTO grids VALUES (1, '{1,2}')`);
    await sql(db.url, `INSERT INTO grids VALUES (2, '{{1,2},{3,4}}')`);
    await sql(db.url, `INSERT INTO grids VALUES (3, '{5}')`);
    const records = await until('two records', d, async () => {
      const got = await readTopic(requireService('kafka'), topic, { count: 2, quietMs: 1500 });
      return got.length >= 2 ? got : undefined;
    });
    const decoded = await decodeAll(new SchemaRegistryClient({ url: requireService('registry') }), records);
    expect(decoded.map((x) => x.event.data.after)).toEqual([
      { id: 1, cells: [1, 2] },
      { id: 3, cells: [5] },
    ]);
    const lines = readFileSync(letters, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(1);
    const letter = JSON.parse(lines[0]!) as {
      reason: string;
      sink: string;
      table: string;
      event: { data: unknown };
    };
    expect(letter).toMatchObject({ sink: 'kafka', table: 'public.grids' });
    expect(letter.reason).toMatch(
      /does not fit its Avro schema: public\.grids: column "cells" of after: a multi-dimensional array/,
    );
    expect(letter.event.data).toMatchObject({
      after: {
        id: 2,
        cells: [
          [1, 2],
          [3, 4],
        ],
      },
    });
    expect(d.proc.exitCode).toBeNull();
    expect(d.stderr()).not.toContain('pw%40x');
    const api = /"url":"(http:\/\/127\.0\.0\.1:\d+)","auth":false,"msg":"HTTP API listening"/.exec(
      d.stderr(),
    )![1]!;
    const info = await (await fetch(`${api}/info`)).text();
    expect(info).toContain('schemaRegistry');
    expect(info).not.toContain('pw%40x');
  });
});
