/**
 * The Kafka counterpart of tail-worker.ts: a read_committed reader of the Kafka sink's topic in a thread
 * of its own (CommittedReader, long-polling Fetch requests) recording, per event, the time it became
 * visible to a read_committed consumer minus the event's commit `time`, grouped by the row's `phase`.
 * Messages: {cmd:'collect'} → replies {phase: number[]} and forgets them; {cmd:'stop'}.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { CommittedReader } from '../../src/sinks/kafka/index.ts';
import { LatencyTally } from './latency-tally.ts';

const { brokers, topic } = workerData as { brokers: string; topic: string };
let stopped = false;
const tally = new LatencyTally(() => (stopped = true));

const reader = new CommittedReader(
  {
    clientId: 'bench-latency-tail',
    bootstrapBrokers: [brokers],
    timeout: 15000,
    retries: 5,
    retryDelay: 200,
  },
  topic,
);
try {
  // the daemon creates the topic when it opens its sink: wait for it
  while (!stopped && !(await reader.init('beginning').catch(() => false)))
    await new Promise((r) => setTimeout(r, 100));
  while (!stopped) {
    const records = await reader.poll(100);
    const seenAt = performance.timeOrigin + performance.now();
    for (const r of records) {
      if (r.value) tally.record(r.value, seenAt);
    }
  }
} finally {
  await reader.close();
  parentPort!.close();
}
