/** @services pubsub */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { requireService } from '../support/require-service.ts';
import { StreamVerifier } from '../../src/events/verify.ts';
import { asPacked } from '../../src/sinks/batch.ts';
import { decodeMessage, encodeEvent } from '../../src/sinks/encode.ts';
import { orderingKeyFor } from '../../src/sinks/ordering-key.ts';
import { PubSubSink, type PubSubSinkOptions } from '../../src/sinks/pubsub.ts';
import type { OutboundEvent } from '../../src/sinks/sink.ts';
import { makeEvents } from '../support/events.ts';
import { Collector } from '../support/pubsub-read.ts';
import { PubSubEmulator } from '../support/pubsub.ts';

/**
 * The Pub/Sub sink against Google's own fake (pstest, test/support/pubsub.ts): ordering keys,
 * CloudEvents attributes, envelopes, failure + resumePublishing across an emulator restart, concurrency.
 */

requireService('pubsub'); // the client reaches the emulator through PUBSUB_EMULATOR_HOST
const PROJECT = 'tagc-test';

function options(topic: string, extra: Partial<PubSubSinkOptions> = {}): PubSubSinkOptions {
  return {
    projectId: PROJECT,
    topic,
    routes: {},
    envelope: 'structured',
    database: 'testdb',
    version: 'test',
    ...extra,
  };
}

const topicName = (tag: string) => `t-${tag}-${randomUUID().slice(0, 8)}`;

/** Publishes the events through an open sink in batches of `per`, closes it, and returns what a subscriber got. */
async function publishAndCollect(sink: PubSubSink, topic: string, events: OutboundEvent[], per: number) {
  const c = await new Collector(PROJECT).subscribe(topic);
  for (let i = 0; i < events.length; i += per) await sink.write(events.slice(i, i + per));
  await sink.close();
  const got = await c.waitFor(events.length);
  await c.close();
  return got;
}

describe('Pub/Sub sink (pstest)', () => {
  it.each(['structured', 'binary', 'debezium'] as const)(
    '%s envelope: ordering key = partition key, ce_* attributes, per-key order',
    async (envelope) => {
      const topic = topicName(envelope);
      const sink = new PubSubSink(options(topic, { envelope }));
      expect(await sink.open()).toBeNull();
      expect(sink.ownsCheckpoint).toBe(false);
      const all = makeEvents(0, 60);
      const got = await publishAndCollect(sink, topic, all, 20);
      expect(got).toHaveLength(60);
      const v = new StreamVerifier();
      for (const m of got) {
        const e = decodeMessage(m.attributes, m.data);
        expect(m.orderingKey).toBe(e.partitionkey);
        expect(m.attributes).toMatchObject({
          ce_id: e.id,
          ce_type: e.type,
          ce_lsn: e.lsn,
          ce_commitlsn: e.commitlsn,
        });
        v.add(e);
      }
      const r = v.report(all.map((e) => e.event.id));
      expect({ dup: r.duplicates, ooo: r.outOfOrder, gaps: r.gaps }).toEqual({ dup: 0, ooo: 0, gaps: 0 });
      const sample = got.find((m) => m.attributes.ce_id === all[10]!.event.id)!;
      const body = JSON.parse(sample.data);
      if (envelope === 'structured') expect(body).toEqual(all[10]!.event);
      if (envelope === 'binary') expect(body).toEqual(all[10]!.event.data);
      if (envelope === 'debezium')
        expect(body).toMatchObject({ op: 'u', after: { n: 10 }, source: { table: 'tasks' } });
    },
  );

  it('ordering buckets: one entity keeps one ordering key of N, per-key order holds', async () => {
    const topic = topicName('buckets');
    const sink = new PubSubSink(options(topic, { orderingBuckets: 4 }));
    await sink.open();
    const all = makeEvents(0, 200);
    const got = await publishAndCollect(sink, topic, all, 50);
    expect(got).toHaveLength(200);
    const keyOf = new Map<string, string>();
    const v = new StreamVerifier();
    for (const m of got) {
      const e = decodeMessage(m.attributes, m.data);
      expect(m.orderingKey).toBe(orderingKeyFor(e.partitionkey, 4));
      expect(keyOf.get(e.partitionkey) ?? m.orderingKey).toBe(m.orderingKey);
      keyOf.set(e.partitionkey, m.orderingKey!);
      v.add(e);
    }
    expect(new Set(keyOf.values()).size).toBeGreaterThan(1);
    const r = v.report(all.map((e) => e.event.id));
    expect({ dup: r.duplicates, ooo: r.outOfOrder, gaps: r.gaps }).toEqual({ dup: 0, ooo: 0, gaps: 0 });
  });

  it('a prepared batch is published while the previous write waits: all arrive, per-key order holds', async () => {
    const topic = topicName('prepared');
    const sink = new PubSubSink(options(topic, { orderingBuckets: 4 }));
    await sink.open();
    const c = await new Collector(PROJECT).subscribe(topic);
    const all = makeEvents(0, 300);
    // as the runner does: the next batch is prepared (published) before the current write resolves
    const first = sink.write(all.slice(0, 100));
    const second = sink.prepare(asPacked(all.slice(100, 200)));
    const third = sink.prepare(asPacked(all.slice(200, 300)));
    await first;
    await sink.write(all.slice(100, 200), second);
    await sink.write(all.slice(200, 300), third);
    await sink.close();
    const got = await c.waitFor(300);
    await c.close();
    expect(got).toHaveLength(300);
    const v = new StreamVerifier();
    const sent = new Map(all.map((e) => [e.event.id, e]));
    for (const m of got) {
      const e = decodeMessage(m.attributes, m.data);
      // packed batches take the bytes path: attributes read from the JSON's head, body = its bytes
      expect(m.attributes).toEqual(encodeEvent(sent.get(e.id)!, 'structured', 'testdb', 'test').headers);
      expect(m.data).toBe(sent.get(e.id)!.json);
      v.add(e);
    }
    const r = v.report(all.map((e) => e.event.id));
    expect({ dup: r.duplicates, ooo: r.outOfOrder, gaps: r.gaps }).toEqual({ dup: 0, ooo: 0, gaps: 0 });
  });

  it('many concurrent single-event writes all arrive, and the write loop rate', async () => {
    const topic = topicName('conc');
    const sink = new PubSubSink(options(topic));
    await sink.open();
    const c = await new Collector(PROJECT).subscribe(topic, { ordering: false });
    const events = makeEvents(0, 1000);
    const w = await Promise.allSettled(events.map((e) => sink.write([e])));
    expect(w.filter((r) => r.status === 'rejected')).toEqual([]);
    const N = 10000;
    const more = makeEvents(1000, N);
    const started = performance.now();
    for (let i = 0; i < N; i += 1000) await sink.write(more.slice(i, i + 1000));
    const ms = performance.now() - started;
    await sink.close();
    process.stderr.write(
      `pubsub sink (pstest): ${N} events in ${Math.round(ms)} ms = ${Math.round((N / ms) * 1000)} events/s\n`,
    );
    const got = await c.waitFor(1000 + N, { quietMs: 5000 });
    await c.close();
    expect(new Set(got.map((m) => m.attributes.ce_id)).size).toBe(1000 + N);
  });
});

describe('Pub/Sub sink across an emulator outage (own pstest)', () => {
  let emulator: PubSubEmulator;
  let saved: string | undefined;
  beforeAll(async () => {
    emulator = await new PubSubEmulator().start();
    saved = process.env.PUBSUB_EMULATOR_HOST;
    process.env.PUBSUB_EMULATOR_HOST = emulator.host;
  });
  afterAll(async () => {
    process.env.PUBSUB_EMULATOR_HOST = saved;
    await emulator?.stop();
  });

  it('a write fails while pstest is down, the keys are resumed, the retry after the restart succeeds', async () => {
    const topic = topicName('outage');
    const sink = new PubSubSink(options(topic, { publishTimeoutMs: 3000 }));
    await sink.open();
    await sink.write(makeEvents(0, 20));

    await emulator.stop();
    const batch = makeEvents(20, 20);
    await expect(sink.write(batch)).rejects.toThrow(/publishes failed/);
    // pstest keeps state in memory: after the restart the topic (and any subscription) is gone
    await emulator.start();
    await sink.ensureTopics();
    const c = await new Collector(PROJECT).subscribe(topic);
    // the runner retries the same batch: without resumePublishing the keys would stay paused
    for (let attempt = 0; ; attempt++) {
      try {
        await sink.write(batch);
        break;
      } catch (err) {
        if (attempt > 10) throw err;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    await sink.write(makeEvents(40, 20));
    await sink.close();
    const got = await c.waitFor(40);
    await c.close();
    const ids = new Set(got.map((m) => m.attributes.ce_id));
    for (const e of makeEvents(20, 40)) expect(ids.has(e.event.id)).toBe(true);
  }, 120000);
});
