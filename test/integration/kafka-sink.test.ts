/** @services kafka */
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createRecord, Producer, Reader, readRecordsBatch, stringSerializers } from '@platformatic/kafka';
import type { CloudEvent } from '../../src/events/envelope.ts';
import type { Logger } from '../../src/log.ts';
import { StreamVerifier } from '../../src/events/verify.ts';
import { asPacked } from '../../src/sinks/batch.ts';
import { decodeMessage, encodeEvent } from '../../src/sinks/encode.ts';
import {
  headerBlocks,
  KafkaMessageEncoder,
  KafkaSink,
  KafkaWriter,
  prewarmKafkaThread,
  toWireBatch,
  transactionalIdFor,
  type KafkaSinkOptions,
} from '../../src/sinks/kafka/index.ts';
import { outboundEvent, type OutboundEvent } from '../../src/sinks/sink.ts';
import { formatPosition } from '../../src/util/lsn.ts';
import { makeEvent, makeEvents } from '../support/events.ts';
import { KafkaBroker, kafkaHome } from '../support/kafka.ts';
import { readCommitted, readTopic, type ReadMessage } from '../support/kafka-read.ts';
import { javaPartitions } from '../support/kafka-java.ts';
import { requireService } from '../support/require-service.ts';

/**
 * The Kafka sink against a real one-node KRaft broker (test/support/kafka.ts): envelopes, keys and
 * order, the transactional checkpoint across crashes, a broker outage, and concurrent idempotent sends.
 */

const BROKERS = requireService('kafka');
const WRITER = new URL('../support/kafka-writer.ts', import.meta.url).pathname;
const JAVA_READER = new URL('../support/kafka/JavaReader.java', import.meta.url).pathname;

function names(tag: string) {
  const u = randomUUID().slice(0, 8);
  return { slot: `s_${tag}_${u}`, topic: `t-${tag}-${u}`, checkpointTopic: `cp-${tag}-${u}` };
}

function sinkOptions(brokers: string, n: ReturnType<typeof names>, extra: Partial<KafkaSinkOptions> = {}) {
  return {
    brokers: [brokers],
    ...n,
    routes: {},
    exactlyOnce: true,
    envelope: 'structured' as const,
    partitions: 3,
    replicationFactor: 1,
    clientId: 'tagc-test',
    database: 'testdb',
    version: 'test',
    ...extra,
  } satisfies KafkaSinkOptions;
}

function decode(messages: ReadMessage[]): CloudEvent[] {
  return messages.map((m) => decodeMessage(m.headers, m.value));
}

/** Every key's events in one partition and, by offset, in commit order. */
function expectKeyOrder(messages: ReadMessage[]): void {
  const byKey = new Map<string, ReadMessage[]>();
  for (const m of messages) byKey.set(m.key, [...(byKey.get(m.key) ?? []), m]);
  for (const [, ms] of byKey) {
    expect(new Set(ms.map((m) => m.partition)).size).toBe(1);
    const byOffset = [...ms].sort((a, b) => (a.offset < b.offset ? -1 : 1));
    const ids = byOffset.map((m) => decodeMessage(m.headers, m.value).id);
    const v = new StreamVerifier();
    for (const m of byOffset) v.add(decodeMessage(m.headers, m.value));
    expect(v.report().outOfOrder).toBe(0);
    expect(ids.length).toBe(ms.length);
  }
}

/** Events whose JSON the fast paths must handle or leave to the parse: escapes, non-ASCII, odd order. */
function awkwardEvents(): OutboundEvent[] {
  const variants: ((e: CloudEvent) => CloudEvent)[] = [
    (e) => e,
    (e) => ({ ...e, subject: 'we"ird\\subject' }),
    (e) => ({ ...e, subject: 'ünïcödé/キー' }),
    (e) => ({ ...e, subject: '' }),
    ({ subject: _, ...e }) => e,
    (e) => ({ ...e, data: { ...e.data, x: 'é"\\' } }),
    ({ data, ...e }) => ({ data, ...e }), // data first
    (e) => ({ ...e, partitionkey: 'k'.repeat(200), subject: 's'.repeat(300) }),
    (e) => ({ ...e, partitionkey: 'ключ' }),
  ];
  return makeEvents(0, 40).flatMap((o, i) =>
    variants.map((v, j) => outboundEvent(v(o.event), i * variants.length + j, o.position, o.table)),
  );
}

/** The record bytes the client writes for a message (timestamp fixed). */
function recordBytes(m: { key?: Buffer; value?: Buffer; headers?: unknown }): Buffer {
  const { key, value, headers } = m as { key: Buffer; value: Buffer; headers: Map<Buffer, Buffer> };
  return createRecord({ key, value, headers, topic: 't', timestamp: 1n }, 0, 1n).buffer;
}

describe('Kafka message encoding (no broker)', () => {
  it('the client takes encoded header blocks (@platformatic/kafka version check)', () => {
    expect(headerBlocks()).toBe(true);
  });

  it.each(['structured', 'binary', 'debezium'] as const)(
    '%s: records byte for byte those of encodeEvent with plain headers, in-process and through a WireBatch',
    async (envelope) => {
      const events = awkwardEvents();
      const encoder = new KafkaMessageEncoder(envelope, 'db', 'v');
      // the writer's own path: joined JSON, events from 7 on (as after a checkpoint recheck)
      const writer = new KafkaWriter({
        ...sinkOptions('x', names('enc')),
        envelope,
        database: 'db',
        version: 'v',
      });
      // the client's per-message send (ownRecordBatches: false)
      const viaWire: { key?: Buffer; value?: Buffer; headers?: unknown }[] = [];
      const clientWriter = new KafkaWriter({
        ...sinkOptions('x', names('enc')),
        envelope,
        database: 'db',
        version: 'v',
        ownRecordBatches: false,
      });
      const fake = { send: async (o: { messages: typeof viaWire }) => void viaWire.push(...o.messages) };
      const produce = (clientWriter as unknown as Record<string, (...a: unknown[]) => Promise<void>>)
        .produce!;
      await produce.call(
        clientWriter,
        fake,
        undefined,
        toWireBatch(asPacked(events), () => 't', envelope),
        7,
      );
      expect(viaWire).toHaveLength(events.length - 7);
      // record batches of our own (one partition: every record in one batch per request, in order)
      const viaBatches: { key?: Buffer; value?: Buffer; headers?: unknown }[] = [];
      await writer.writeRecordBatches(
        toWireBatch(asPacked(events), () => 't', envelope),
        7,
        [1],
        async (batches) => {
          for (const b of batches) {
            const read = readRecordsBatch(Reader.from(Buffer.concat([b.batch.head, b.batch.payload])));
            expect(read.producerId).toBe(9n);
            for (const r of read.records)
              viaBatches.push({ key: r.key!, value: r.value!, headers: new Map(r.headers) });
          }
        },
        9n,
        0,
        false,
      );
      expect(viaBatches).toHaveLength(events.length - 7);
      events.forEach((e, i) => {
        const ref = encodeEvent(e, envelope, 'db', 'v');
        const plain = {
          key: Buffer.from(e.partitionkey),
          value: Buffer.from(ref.value),
          headers: new Map(Object.entries(ref.headers).map(([k, v]) => [Buffer.from(k), Buffer.from(v)])),
        };
        const strip = (b: Buffer) => b.toString('latin1').replace(/"ts_ms":\d+/, ''); // debezium: now
        const expected = strip(recordBytes(plain));
        expect(strip(recordBytes(encoder.message('t', e)))).toBe(expected);
        if (i >= 7) expect(strip(recordBytes(viaWire[i - 7]!))).toBe(expected);
        if (i >= 7) expect(strip(recordBytes(viaBatches[i - 7]!))).toBe(expected);
      });
    },
  );
});

/**
 * 20 events committed by a sink, then two transactions of a "crashed" instance (same transactional
 * id, 10 events and a checkpoint each, never committed nor aborted), so the topic holds two aborted
 * transactions of one producer id once the next producer fences them.
 */
async function withAbandonedTransactions(brokers: string, n: ReturnType<typeof names>): Promise<void> {
  const a = new KafkaSink(sinkOptions(brokers, n));
  await a.open();
  await a.write(makeEvents(0, 20));
  // a "crashed" instance: same transactional id, events and checkpoint sent, never committed (twice,
  // so the checkpoint topic holds two aborted transactions of one producer id)
  for (const from of [20, 25]) {
    const zombie = new Producer<string, string, string, string>({
      clientId: 'zombie',
      bootstrapBrokers: [brokers],
      idempotent: true,
      transactionalId: transactionalIdFor('tagc-test', n.slot),
      producerId: -1n, // see KafkaSink.newProducer
      producerEpoch: -1,
      serializers: stringSerializers,
    });
    const tx = await zombie.beginTransaction();
    await tx.send({
      messages: [
        ...makeEvents(from, 10).map((e) => ({ topic: n.topic, key: e.event.partitionkey, value: e.json })),
        {
          topic: n.checkpointTopic,
          key: n.slot,
          value: JSON.stringify({ commitLsn: '0/1FFFFFF', seq: 0 }),
        },
      ],
    });
    await zombie.close(true); // no commit, no abort: the process "died"
  }
}

describe('Kafka sink (real broker)', () => {
  const brokers = BROKERS;

  it.each(['lz4', 'zstd', 'gzip', 'none'] as const)(
    'our own record batches (%s) read back by the Apache Kafka Java client, read_committed',
    async (compression) => {
      const n = names(`java-${compression}`);
      const sink = new KafkaSink(sinkOptions(brokers, n, { compression }));
      await sink.open();
      // awkward events too: escapes, non-ASCII keys and subjects, a 200-character key
      const odd: ((e: CloudEvent) => CloudEvent)[] = [
        (e) => ({ ...e, subject: 'we"ird\\subject', partitionkey: 'ключ' }),
        (e) => ({ ...e, subject: 'ünïcödé/キー', partitionkey: 'k'.repeat(200) }),
        (e) => ({ ...e, subject: '', data: { ...e.data, x: 'é"\\' } }),
      ];
      const all = makeEvents(0, 360, { keys: 11 }).map((o, i) =>
        i < 300 ? o : outboundEvent(odd[i % 3]!(o.event), i, o.position, o.table),
      );
      for (let i = 0; i < all.length; i += 90) await sink.write(all.slice(i, i + 90));
      await sink.close();
      const r = spawnSync(
        'java',
        ['-cp', `${join(kafkaHome(), 'libs')}/*`, JAVA_READER, brokers, n.topic, String(all.length), '60000'],
        { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
      );
      expect(r.status).toBe(0);
      const got = r.stdout
        .trim()
        .split('\n')
        .map(
          (l) =>
            JSON.parse(l) as {
              partition: number;
              offset: number;
              key: string;
              value: string;
              headers: [string, string][];
            },
        );
      expect(got).toHaveLength(all.length);
      const byId = new Map(all.map((e) => [e.event.id, e]));
      const partitionOfKey = new Map<string, number>();
      const lastOffset = new Map<number, number>();
      const order = new Map<string, string[]>();
      for (const m of [...got].sort((a, b) => a.partition - b.partition || a.offset - b.offset)) {
        const headers = Object.fromEntries(m.headers);
        const e = byId.get(headers.ce_id!)!;
        expect(e).toBeDefined();
        expect(m.key).toBe(e.partitionkey);
        expect(m.value).toBe(e.json);
        expect(headers['content-type']).toMatch(/^application\/cloudevents\+json/);
        expect(headers.ce_partitionkey).toBe(e.partitionkey);
        // one partition per key, offsets increasing, each key's events in stream order
        expect(partitionOfKey.get(m.key) ?? m.partition).toBe(m.partition);
        partitionOfKey.set(m.key, m.partition);
        expect(m.offset).toBeGreaterThan(lastOffset.get(m.partition) ?? -1);
        lastOffset.set(m.partition, m.offset);
        order.set(m.key, [...(order.get(m.key) ?? []), e.event.id]);
      }
      for (const [key, ids] of order)
        expect(ids).toEqual(all.filter((e) => e.partitionkey === key).map((e) => e.event.id));
      expect(new Set(got.map((m) => m.partition)).size).toBeGreaterThan(1);
      // each key in the partition the Java client's partitioner picks for it (3 partitions)
      const keys = [...partitionOfKey.keys()];
      const java = javaPartitions(
        keys.map((k) => Buffer.from(k)),
        3,
      );
      expect(keys.filter((k, i) => partitionOfKey.get(k) !== java[i]!.partitions[2])).toEqual([]);
    },
    120_000,
  );

  it.each(['structured', 'binary', 'debezium'] as const)(
    '%s envelope: keys = partition keys, commit order per key, decodable',
    async (envelope) => {
      const n = names(envelope);
      const sink = new KafkaSink(sinkOptions(brokers, n, { envelope }));
      expect(await sink.open()).toBeNull();
      const all = makeEvents(0, 90);
      for (let i = 0; i < 90; i += 30) await sink.write(all.slice(i, i + 30));
      await sink.close();

      const got = await readCommitted(brokers, n.topic, { count: 90 });
      expect(got).toHaveLength(90);
      expect(got.every((m) => m.key === decodeMessage(m.headers, m.value).partitionkey)).toBe(true);
      expectKeyOrder(got);
      const events = decode(got);
      expect(new Set(events.map((e) => e.id))).toEqual(new Set(all.map((e) => e.event.id)));
      const sample = got.find((m) => m.headers.ce_id === all[10]!.event.id)!;
      const value = JSON.parse(sample.value);
      if (envelope === 'structured') {
        expect(sample.headers['content-type']).toMatch(/^application\/cloudevents\+json/);
        expect(value).toEqual(all[10]!.event);
      } else if (envelope === 'binary') {
        expect(sample.headers).toMatchObject({
          ce_id: all[10]!.event.id,
          ce_type: 'task.updated',
          ce_lsn: all[10]!.event.lsn,
        });
        expect(value).toEqual(all[10]!.event.data);
      } else {
        expect(value).toMatchObject({
          op: 'u',
          before: { id: 'k3', n: 3 },
          after: { id: 'k3', n: 10 },
          source: { connector: 'postgresql', db: 'testdb', table: 'tasks', txId: all[10]!.event.xid },
        });
        expect(typeof value.ts_ms).toBe('number');
      }
      // the checkpoint record lives in its own compacted topic, not among the events
      const cps = await readCommitted(brokers, n.checkpointTopic, { count: 3 });
      expect(cps.map((m) => m.key)).toEqual([n.slot, n.slot, n.slot]);
      expect(JSON.parse(cps[2]!.value)).toMatchObject({ id: all[89]!.event.id });
    },
  );

  it('routes events to topics per type/table', async () => {
    const n = names('route');
    const other = `${n.topic}-created`;
    const sink = new KafkaSink(sinkOptions(brokers, n, { routes: { 'task.created': other } }));
    await sink.open();
    // routing reads the event's `type` beside its JSON: rebuild the event, not only its envelope
    const events = makeEvents(0, 6).map((e, i) =>
      i % 2 ? outboundEvent({ ...e.event, type: 'task.created' }, e.ordinal, e.position, e.table) : e,
    );
    await sink.write(events);
    await sink.close();
    expect(await readCommitted(brokers, other, { count: 3 })).toHaveLength(3);
    expect(await readCommitted(brokers, n.topic, { count: 3 })).toHaveLength(3);
  });

  it.each([true, false])(
    'a transaction over the broker max message size for one key goes as several requests (thread: %s)',
    async (thread) => {
      const n = names(`big-${thread}`);
      // uncompressed, one key: ~3 MB of records for one partition in one transaction (1 MiB per batch)
      const sink = new KafkaSink(sinkOptions(brokers, n, { thread, compression: 'none' }));
      await sink.open();
      const events = makeEvents(0, 6000, { keys: 1, perTx: 6000 });
      await sink.write(events);
      await sink.close();
      const got = await readCommitted(brokers, n.topic, { count: 6000, quietMs: 5000 });
      expect(got).toHaveLength(6000);
      expectKeyOrder(got);
      const b = new KafkaSink(sinkOptions(brokers, n, { thread }));
      expect(await b.open()).toEqual(events.at(-1)!.position);
      await b.close();
    },
  );

  it('reads its checkpoint back on open (the last committed batch)', async () => {
    const n = names('cp');
    const a = new KafkaSink(sinkOptions(brokers, n));
    expect(await a.open()).toBeNull();
    await a.write(makeEvents(0, 10));
    await a.write(makeEvents(10, 5));
    await a.close();
    const b = new KafkaSink(sinkOptions(brokers, n));
    expect(await b.open()).toEqual(makeEvent(14).position);
    await b.close();
    // another slot in the same checkpoint topic has its own
    const c = new KafkaSink(sinkOptions(brokers, { ...n, slot: `${n.slot}_other` }));
    expect(await c.open()).toBeNull();
    await c.close();
  });

  it('a thread started ahead (a standby, before the lock) serves the sink that takes it', async () => {
    const n = names('prewarm');
    prewarmKafkaThread(); // loads its modules; nothing talks to Kafka until a sink sends the options
    const said: string[] = [];
    const logger = {
      info: (_o: object, msg: string) => said.push(msg),
      warn: (_o: object, msg: string) => said.push(msg),
    };
    const a = new KafkaSink(sinkOptions(brokers, n, { logger: logger as unknown as Logger }));
    expect(await a.open()).toBeNull();
    await a.write(makeEvents(0, 20));
    await a.close();
    // from the thread (its log goes through the main thread), not the in-process fallback
    expect(said).toContain('kafka checkpoint read');
    expect(said.filter((m) => /in-process|thread/.test(m))).toEqual([]);
    const ids = decode(await readCommitted(brokers, n.topic, { count: 20 })).map((e) => e.id);
    expect(ids.sort()).toEqual(
      makeEvents(0, 20)
        .map((e) => e.event.id)
        .sort(),
    );
    const b = new KafkaSink(sinkOptions(brokers, n)); // no spare left: a thread of its own
    expect(await b.open()).toEqual(makeEvent(19).position);
    await b.close();
  });

  it('an abandoned transaction (crash before commit) is aborted: checkpoint = last committed batch, each event once', async () => {
    const n = names('crash');
    await withAbandonedTransactions(brokers, n);
    const b = new KafkaSink(sinkOptions(brokers, n));
    const cp = await b.open();
    expect(cp && formatPosition(cp)).toBe(formatPosition(makeEvent(19).position));
    await b.write(makeEvents(20, 20)); // the runner redelivers after the checkpoint
    await b.close();

    const got = await readCommitted(brokers, n.topic, { count: 40 });
    const ids = decode(got).map((e) => e.id);
    expect(ids).toHaveLength(40);
    expect(new Set(ids).size).toBe(40);
  });

  it('a bare ABORT in the checkpoint topic (partition added, the process died before writing) hides no checkpoint', async () => {
    // The soak's duplicates: a new leader read an older checkpoint and wrote again. The checkpoint
    // partition here: A's commit (event 19), two aborted zombie transactions, B's commit (event 39),
    // then the ABORT marker of a zombie that only added the partition (no aborted-transaction entry);
    // @platformatic/kafka's own read_committed filter hid B's commit behind it (src/sinks/kafka/fetch.ts).
    const n = names('bare');
    await withAbandonedTransactions(brokers, n);
    const b = new KafkaSink(sinkOptions(brokers, n));
    expect(formatPosition((await b.open())!)).toBe(formatPosition(makeEvent(19).position));
    await b.write(makeEvents(20, 20));
    await b.close();
    const zombie = new Producer<string, string, string, string>({
      clientId: 'zombie',
      bootstrapBrokers: [brokers],
      idempotent: true,
      transactionalId: transactionalIdFor('tagc-test', n.slot),
      producerId: -1n, // see KafkaSink.newProducer
      producerEpoch: -1,
      serializers: stringSerializers,
    });
    const metadata = await zombie.metadata({ topics: [n.checkpointTopic] });
    const tx = await zombie.beginTransaction();
    await tx.addPartitions(metadata, [{ topic: n.checkpointTopic, partition: 0, value: Buffer.alloc(0) }]);
    await zombie.close(true); // died before its Produce request
    const c = new KafkaSink(sinkOptions(brokers, n));
    await c.open(); // fences the zombie: the coordinator writes the bare ABORT marker
    await c.close();
    const d = new KafkaSink(sinkOptions(brokers, n));
    const cp = await d.open();
    await d.close();
    expect(cp && formatPosition(cp)).toBe(formatPosition(makeEvent(39).position));
  });

  it('SIGKILLed writer processes: every event exactly once for a read_committed consumer', async () => {
    const n = names('kill');
    const TOTAL = 6000;
    const run = (killAfterCommits: number | null) =>
      new Promise<{ lastCommitted: number; start: number }>((resolve, reject) => {
        const child = spawn(
          process.execPath,
          [WRITER, brokers, n.slot, n.topic, n.checkpointTopic, String(TOTAL), '150'],
          { stdio: ['ignore', 'pipe', 'pipe'] },
        );
        let out = '';
        let err = '';
        let commits = 0;
        let lastCommitted = -1;
        let start = -1;
        child.stderr.on('data', (b: Buffer) => (err += b.toString()));
        child.stdout.on('data', (b: Buffer) => {
          out += b.toString();
          const lines = out.split('\n');
          out = lines.pop()!;
          for (const line of lines) {
            const [what, arg] = line.split(' ');
            if (what === 'start') start = Number(arg);
            if (what === 'committed') {
              lastCommitted = Number(arg);
              if (++commits === killAfterCommits) child.kill('SIGKILL');
            }
          }
        });
        child.on('exit', (code, signal) => {
          if (killAfterCommits === null && code !== 0) reject(new Error(`writer failed (${code}): ${err}`));
          else if (killAfterCommits !== null && signal !== 'SIGKILL')
            reject(new Error(`writer ended early: ${err}`));
          else resolve({ lastCommitted, start });
        });
      });
    let expectedStart = 0;
    for (const killAt of [3, 7, 5]) {
      const r = await run(killAt);
      expect(r.start).toBe(expectedStart);
      const sink = new KafkaSink(sinkOptions(brokers, n));
      const cp = await sink.open();
      await sink.close();
      // the checkpoint holds at least what the killed writer reported committed (maybe one more batch)
      const cpIndex = cp ? Number((cp.commitLsn - 0x1000000n) / 0x100n) * 3 + cp.seq : -1;
      expect(cpIndex).toBeGreaterThanOrEqual(r.lastCommitted);
      expectedStart = cpIndex + 1;
    }
    const last = await run(null);
    expect(last.lastCommitted).toBe(TOTAL - 1);

    const got = await readCommitted(brokers, n.topic, { count: TOTAL, quietMs: 5000 });
    const v = new StreamVerifier();
    for (const e of decode(got)) v.add(e);
    const report = v.report(makeEvents(0, TOTAL).map((e) => e.event.id));
    expect({ events: report.events, duplicates: report.duplicates, gaps: report.gaps }).toEqual({
      events: TOTAL,
      duplicates: 0,
      gaps: 0,
    });
    expectKeyOrder(got);
  });

  it('many concurrent single-event idempotent sends all arrive (client regression)', async () => {
    const n = names('conc');
    const COUNT = 2000;
    const producer = new Producer<string, string, string, string>({
      clientId: 'tagc-conc',
      bootstrapBrokers: [brokers],
      idempotent: true,
      serializers: stringSerializers,
      autocreateTopics: true,
    });
    const events = makeEvents(0, COUNT);
    // the first send creates the topic; then all at once
    await producer.send({ messages: [{ topic: n.topic, key: 'warmup', value: '{}' }] });
    const results = await Promise.allSettled(
      events.map((e) =>
        producer.send({ messages: [{ topic: n.topic, key: e.event.partitionkey, value: e.json }] }),
      ),
    );
    await producer.close();
    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
    const got = await readCommitted(brokers, n.topic, { count: COUNT + 1, quietMs: 5000 });
    const ids = new Set(got.filter((m) => m.key !== 'warmup').map((m) => JSON.parse(m.value).id));
    expect(ids.size).toBe(COUNT);

    // and through the sink, non-transactional, overlapping writes of one event each
    const n2 = names('conc2');
    const sink = new KafkaSink(sinkOptions(brokers, n2, { exactlyOnce: false }));
    expect(await sink.open()).toBeNull();
    const w = await Promise.allSettled(events.slice(0, 500).map((e) => sink.write([e])));
    await sink.close();
    expect(w.filter((r) => r.status === 'rejected')).toEqual([]);
    expect(await readCommitted(brokers, n2.topic, { count: 500 })).toHaveLength(500);
  });

  it('write loop throughput (exactly-once, 1000-event transactions)', async () => {
    const n = names('perf');
    const sink = new KafkaSink(sinkOptions(brokers, n));
    await sink.open();
    const N = 20000;
    const events = makeEvents(0, N);
    const started = performance.now();
    const lat: number[] = [];
    for (let i = 0; i < N; i += 1000) {
      const t = performance.now();
      await sink.write(events.slice(i, i + 1000));
      lat.push(performance.now() - t);
    }
    const ms = performance.now() - started;
    await sink.close();
    lat.sort((a, b) => a - b);
    const rate = Math.round((N / ms) * 1000);
    process.stderr.write(
      `kafka sink exactly-once: ${N} events in ${Math.round(ms)} ms = ${rate} events/s; ` +
        `batch commit p50 ${Math.round(lat[Math.floor(lat.length / 2)]!)} ms, max ${Math.round(lat[lat.length - 1]!)} ms\n`,
    );
    expect(rate).toBeGreaterThan(500);
  });
});

// The client-bug pin stands alone: its own topic and aborted transactions, set up here.
describe('@platformatic/kafka read_committed consumer (client bug pin)', () => {
  const brokers = BROKERS;
  let topic = '';
  beforeAll(async () => {
    const n = names('pin');
    await withAbandonedTransactions(brokers, n);
    // The next producer of the transactional id fences (aborts) the abandoned transactions.
    const b = new KafkaSink(sinkOptions(brokers, n));
    await b.open();
    await b.write(makeEvents(20, 20));
    await b.close();
    topic = n.topic;
  });

  // @platformatic/kafka 2.12.1's read_committed consumer keeps one aborted range per producer id per
  // fetch: of the two aborted transactions (withAbandonedTransactions) only the last is filtered, so it shows 50 records.
  // Marked failing while the client has the bug (our CommittedReader filters correctly); when this
  // starts "failing", the client is fixed: make it a plain test.
  it.failing(
    'client bug: its read_committed consumer hides every aborted transaction of a producer',
    async () => {
      const got = await readTopic(brokers, topic, { count: 50, quietMs: 3000 });
      process.stderr.write(`platformatic read_committed consumer: ${got.length} records (40 committed)\n`);
      expect(got).toHaveLength(40);
    },
  );
});

describe('Kafka sink under a broker outage (own broker)', () => {
  let broker: KafkaBroker;
  beforeAll(async () => {
    broker = await new KafkaBroker().start();
  }, 120000);
  afterAll(async () => {
    await broker?.destroy();
  });

  it('writes fail while the broker is down and succeed after it is back; nothing lost or doubled', async () => {
    const n = names('outage');
    const sink = new KafkaSink(sinkOptions(broker.brokers, n, { timeoutMs: 5000, retries: 2 }));
    await sink.open();
    const TOTAL = 3000;
    const BATCH = 50;
    let failures = 0;
    let slowest = 0;
    let stoppedAt = -1;
    let restartedAt = -1;
    const outage = (async () => {
      await new Promise((r) => setTimeout(r, 2000));
      stoppedAt = Date.now();
      await broker.stop('kill');
      await new Promise((r) => setTimeout(r, 10000));
      await broker.start();
      restartedAt = Date.now();
    })();
    // the runner's loop in small: retry the same batch with a pause until it goes through
    for (let i = 0; i < TOTAL; i += BATCH) {
      for (;;) {
        const t = Date.now();
        try {
          await sink.write(makeEvents(i, BATCH));
          slowest = Math.max(slowest, Date.now() - t);
          break;
        } catch {
          failures++;
          await new Promise((r) => setTimeout(r, 500));
        }
      }
      await new Promise((r) => setTimeout(r, 150));
    }
    await outage;
    await sink.close();
    expect(stoppedAt).toBeGreaterThan(0);
    expect(restartedAt).toBeGreaterThan(stoppedAt);
    // the outage hit the stream: writes threw (and were retried) or waited it out
    expect(failures > 0 || slowest > 5000).toBe(true);

    const got = await readCommitted(broker.brokers, n.topic, { count: TOTAL, quietMs: 5000 });
    const ids = decode(got).map((e) => e.id);
    expect(new Set(ids).size).toBe(TOTAL);
    expect(ids).toHaveLength(TOTAL);
    process.stderr.write(
      `kafka outage (10 s, SIGKILLed broker): ${failures} failed write attempts, slowest write ${slowest} ms, ${TOTAL} events exactly once\n`,
    );
  }, 180000);
});

describe('@platformatic/kafka transactional restart (client bug, worked around in KafkaSink)', () => {
  // A second process with the same transactional id must be able to take over (fencing the first).
  // The client sends InitProducerId with producerId 0 / epoch 0 by default instead of -1/-1, which the
  // coordinator rejects with PRODUCER_FENCED once the id belongs to a producer other than 0.
  it('documents that a default transactional Producer cannot restart; -1/-1 can', async () => {
    const brokers = BROKERS;
    const txId = `tagc-bug-${randomUUID()}`;
    const topic = `t-bug-${randomUUID().slice(0, 8)}`;
    const once = async (extra: object) => {
      const p = new Producer<string, string, string, string>({
        clientId: 'bug',
        bootstrapBrokers: [brokers],
        idempotent: true,
        transactionalId: txId,
        serializers: stringSerializers,
        autocreateTopics: true,
        ...extra,
      });
      try {
        const tx = await p.beginTransaction();
        await tx.send({ messages: [{ topic, key: 'k', value: 'v' }] });
        await tx.commit();
        return 'ok';
      } catch (err) {
        return (err as { errors?: Error[] }).errors?.[0]?.message ?? (err as Error).message;
      } finally {
        await p.close(true).catch(() => undefined);
      }
    };
    // make sure some other producer id exists, so this transactional id does not get id 0
    await once({ producerId: -1n, producerEpoch: -1 });
    const restartDefault = await once({});
    const restartFixed = await once({ producerId: -1n, producerEpoch: -1 });
    process.stderr.write(
      `transactional restart: default options -> ${restartDefault}; -1/-1 -> ${restartFixed}\n`,
    );
    expect(restartFixed).toBe('ok');
  });
});

describe('tag-connector tail --from kafka --verify', () => {
  it('prints the events and reports a duplicate with exit code 1', async () => {
    const { runCli } = await import('../support/daemon.ts');
    const brokers = BROKERS;
    const n = names('tail');
    const sink = new KafkaSink(sinkOptions(brokers, n, { exactlyOnce: false }));
    await sink.open();
    await sink.write(makeEvents(0, 30));
    await sink.write(makeEvents(29, 1)); // a redelivery
    await sink.close();
    const args = [
      'tail',
      '--from',
      'kafka',
      '--kafka-brokers',
      brokers,
      '--topic',
      n.topic,
      '--from-beginning',
    ];
    const bad = runCli([...args, '--verify', '--idle-exit-ms', '3000']);
    const badExit = await bad.exit;
    expect(badExit.code).toBe(1);
    expect(bad.stdout().trim().split('\n')).toHaveLength(31);
    expect(bad.stderr()).toMatch(/31 events, 30 unique ids, 7 keys: 1 duplicates, 0 out of order, 0 gaps/);

    const n2 = names('tail2');
    const ok = new KafkaSink(sinkOptions(brokers, n2));
    await ok.open();
    await ok.write(makeEvents(0, 30));
    await ok.close();
    const good = runCli([
      ...args.slice(0, 6),
      n2.topic,
      '--from-beginning',
      '--verify',
      '--quiet',
      '--max-events',
      '30',
    ]);
    expect((await good.exit).code).toBe(0);
    expect(good.stderr()).toMatch(/0 duplicates, 0 out of order, 0 gaps -> OK/);
  });
});
