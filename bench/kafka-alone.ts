/**
 * The "Kafka client alone" ceiling: @platformatic/kafka producing the daemon's own events with the Kafka
 * sink's producer settings (idempotent, acks=all, its compression) in transactions of the same size,
 * each with a checkpoint record, and nothing else: no PostgreSQL, no decoding, no pipeline. The events
 * are the file sink's output of the same catch-up (same JSON, same partition keys), turned into the
 * very messages the sink sends (same headers) before the clock starts. Run as a child of bench/run.ts
 * so its CPU time is its own:
 *
 *   node bench/kafka-alone.ts <brokers> <events.ndjson> <events> <transaction-size> [partitions=6]
 *
 * Prints one JSON line when done: {ev:'done', events, transactions, ms, cpuMicros, bytes}.
 */
import { createReadStream } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import { Admin, Producer } from '@platformatic/kafka';
import {
  checkpointValue,
  KafkaMessageEncoder,
  kafkaProducerOptions,
  MAX_REQUEST_BYTES,
  retryDelay,
  sendAll,
} from '../src/sinks/kafka/index.ts';
import { EncodedEvent } from '../src/sinks/sink.ts';
import { parseLsn } from '../src/util/lsn.ts';

const [brokers, file, eventsArg, txArg, partitionsArg] = process.argv.slice(2);
if (!brokers || !file || !eventsArg || !txArg) {
  process.stderr.write(
    'usage: kafka-alone.ts <brokers> <events.ndjson> <events> <transaction-size> [partitions]\n',
  );
  process.exit(2);
}
const wanted = Number(eventsArg);
const txSize = Number(txArg);
const partitions = Number(partitionsArg ?? 6);
const tag = randomUUID().slice(0, 8);
const topic = `bench-alone-${tag}`;
const checkpointTopic = `bench-alone-cp-${tag}`;
const slot = 'bench_alone';

type Msg = ReturnType<KafkaMessageEncoder['message']>;

// The messages, built before the clock starts: the client's work only is measured.
const encoder = new KafkaMessageEncoder('structured', 'bench', 'bench');
const transactions: { requests: Msg[][]; last: { commitLsn: bigint; seq: number } }[] = [];
let bytes = 0;
let count = 0;
let requests: Msg[][] = [[]];
let requestBytes = 0;
let inTx = 0;
const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
for await (const json of lines) {
  if (count >= wanted) break;
  if (!json) continue;
  const e = JSON.parse(json) as { id: string; type: string; partitionkey: string; time: string };
  // the id is `<commit LSN>/<seq>`: the event's position, for the checkpoint records
  const slash = e.id.lastIndexOf('/');
  const position = { commitLsn: parseLsn(e.id.slice(0, slash)), seq: Number(e.id.slice(slash + 1)) };
  const m = encoder.message(topic, new EncodedEvent(count, position, json, 'bench', e));
  if (requestBytes > 0 && requestBytes + encoder.size > MAX_REQUEST_BYTES) {
    requests.push([]);
    requestBytes = 0;
  }
  requests[requests.length - 1]!.push(m);
  requestBytes += encoder.size;
  bytes += encoder.size;
  count++;
  if (++inTx === txSize) {
    transactions.push({ requests, last: position });
    requests = [[]];
    requestBytes = 0;
    inTx = 0;
  }
}
if (inTx > 0) transactions.push({ requests, last: { commitLsn: 0n, seq: count } });
lines.close();
if (count < wanted) process.stderr.write(`kafka alone: only ${count} events in ${file}\n`);

const base = {
  clientId: `bench-alone-${tag}`,
  bootstrapBrokers: [brokers],
  timeout: 15000,
  connectTimeout: 5000,
  retries: 5,
  retryDelay: retryDelay(500),
};
const admin = new Admin(base);
await admin.createTopics({ topics: [topic], partitions, replicas: -1 });
await admin.createTopics({
  topics: [checkpointTopic],
  partitions: 1,
  replicas: -1,
  configs: [{ name: 'cleanup.policy', value: 'compact' }],
});
await admin.close();

const producer = new Producer(kafkaProducerOptions(base, { transactionalId: `bench-alone.${tag}` }));
// Warm-up outside the clock: connections, metadata, the producer id (the daemon does it in open()).
const warm = await producer.beginTransaction();
await warm.send({
  messages: [{ topic: checkpointTopic, key: Buffer.from('warmup'), value: Buffer.from('{}') }],
});
await warm.commit();

const slotKey = Buffer.from(slot);
const cpu0 = process.cpuUsage();
const t0 = performance.now();
for (const t of transactions) {
  const tx = await producer.beginTransaction();
  const value = Buffer.from(JSON.stringify(checkpointValue(slot, t.last)));
  t.requests[t.requests.length - 1]!.push({ topic: checkpointTopic, key: slotKey, value });
  await sendAll(producer, t.requests, tx);
  await tx.commit();
}
const ms = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
await producer.close();
const admin2 = new Admin(base);
await admin2.deleteTopics({ topics: [topic, checkpointTopic] }).catch(() => undefined);
await admin2.close();
process.stdout.write(
  JSON.stringify({
    ev: 'done',
    events: count,
    transactions: transactions.length,
    ms: Math.round(ms),
    cpuMicros: cpu.user + cpu.system,
    bytes,
  }) + '\n',
);
process.exit(0);
