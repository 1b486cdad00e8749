/**
 * The "Pub/Sub client alone" ceiling: @google-cloud/pubsub publishing the daemon's own events (the file
 * sink's output of the same catch-up) to the same emulator with the sink's topic settings and ordering
 * keys, and nothing else: no PostgreSQL, no decoding, no pipeline. The messages (body and `ce_*`
 * attributes, as the sink encodes them) are built before the clock starts; then every message is
 * published in runs of `batch` (the sink's batch size) with two runs in flight, as the sink and its
 * runner do (the next batch is published while the current one waits for its acknowledgements). Run as a child of bench/run.ts so its CPU time is its own:
 *
 *   PUBSUB_EMULATOR_HOST=... node bench/pubsub-alone.ts <events.ndjson> <events> <ordering-buckets> [batch=2000]
 *
 * Prints one JSON line when done: {ev:'done', events, ms, cpuMicros}.
 */
import { createReadStream } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import { PubSub } from '@google-cloud/pubsub';
import type { CloudEvent } from '../src/events/envelope.ts';
import { encodeEvent } from '../src/sinks/encode.ts';
import { orderingKeyFor } from '../src/sinks/ordering-key.ts';
import { pubsubTopicOptions } from '../src/sinks/pubsub.ts';
import { outboundEvent } from '../src/sinks/sink.ts';

const [file, eventsArg, bucketsArg, batchArg] = process.argv.slice(2);
if (!file || !eventsArg || bucketsArg === undefined) {
  process.stderr.write('usage: pubsub-alone.ts <events.ndjson> <events> <ordering-buckets> [batch]\n');
  process.exit(2);
}
const wanted = Number(eventsArg);
const buckets = Number(bucketsArg);
const batchSize = Number(batchArg ?? 2000);

const messages: { data: Buffer; attributes: Record<string, string>; orderingKey: string }[] = [];
const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
for await (const json of lines) {
  if (messages.length >= wanted) break;
  if (!json) continue;
  const e = JSON.parse(json) as CloudEvent;
  const out = outboundEvent(e, messages.length, { commitLsn: 0n, seq: messages.length }, 'bench');
  const { headers, value } = encodeEvent(out, 'structured', 'bench', 'bench');
  messages.push({
    data: Buffer.from(value),
    attributes: headers,
    orderingKey: orderingKeyFor(String(e.partitionkey), buckets),
  });
}
lines.close();

const client = new PubSub({ projectId: 'bench' });
const [topic] = await client.createTopic(`bench-alone-${randomUUID().slice(0, 8)}`);
const publisher = client.topic(topic.name, pubsubTopicOptions());
// Warm-up outside the clock: the channel and the first RPC.
await publisher.publishMessage({ data: Buffer.from('{}'), orderingKey: 'warm-up' });

const cpu0 = process.cpuUsage();
const t0 = performance.now();
let previous: Promise<unknown> = Promise.resolve();
for (let i = 0; i < messages.length; i += batchSize) {
  const run = messages.slice(i, i + batchSize).map((m) => publisher.publishMessage(m));
  void publisher.flush();
  await previous;
  previous = Promise.all(run);
}
await previous;
const ms = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
await topic.delete().catch(() => undefined);
await client.close();
process.stdout.write(
  JSON.stringify({
    ev: 'done',
    events: messages.length,
    ms: Math.round(ms),
    cpuMicros: cpu.user + cpu.system,
  }) + '\n',
);
process.exit(0);
