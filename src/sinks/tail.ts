import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Config } from '../config/index.ts';
import type { CloudEvent } from '../events/envelope.ts';
import { formatReport, StreamVerifier } from '../events/verify.ts';
import { decodeMessage } from './encode.ts';
import { CommittedReader, kafkaConnectionOptions } from './kafka/index.ts';
import { DEFAULT_TOPIC } from './route.ts';

/**
 * `tag-connector tail`: a subscriber. Kafka: our own read_committed Fetch loop over every partition (no
 * consumer group, nothing committed). Pub/Sub: a subscription it creates on the topic (with message
 * ordering; deleted on exit), so only messages published after it exists are seen. Prints each event as
 * one line of CloudEvents structured JSON; `--verify` checks duplicates, per-key order and gaps.
 */

export interface TailOptions {
  from: 'kafka' | 'pubsub';
  topic?: string;
  fromBeginning: boolean;
  verify: boolean;
  /** Ids the stream must contain (one per line): missing ones are gaps. */
  expectFile?: string;
  /** Stop after this many events. */
  maxEvents?: number;
  /** Stop after this long without an event (ms). */
  idleExitMs?: number;
  /** Do not print the events (with --verify: only the report). */
  quiet: boolean;
}

export async function runTail(config: Config, o: TailOptions): Promise<number> {
  const topic = o.topic ?? config.topic ?? DEFAULT_TOPIC;
  const verifier = o.verify ? new StreamVerifier() : undefined;
  let count = 0;
  let lastAt = Date.now();
  let stop!: () => void;
  const stopped = new Promise<void>((r) => (stop = r));
  const onSignal = () => stop();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const idleTimer = o.idleExitMs
    ? setInterval(() => Date.now() - lastAt > o.idleExitMs! && stop(), Math.min(250, o.idleExitMs))
    : undefined;

  const onEvent = (e: CloudEvent) => {
    lastAt = Date.now();
    count++;
    if (!o.quiet) process.stdout.write(JSON.stringify(e) + '\n');
    if (verifier)
      for (const i of verifier.add(e))
        process.stderr.write(`${i.kind}\tkey=${i.key}\tid=${i.id}\t${i.detail}\n`);
    if (o.maxEvents && count >= o.maxEvents) stop();
  };
  const onBad = (why: string) =>
    process.stderr.write(`tail: skipped a message that is no CloudEvent: ${why}\n`);

  try {
    if (o.from === 'kafka') await tailKafka(config, topic, o, onEvent, onBad, stopped);
    else await tailPubSub(config, topic, onEvent, onBad, stopped);
  } finally {
    if (idleTimer) clearInterval(idleTimer);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  if (!verifier) return 0;
  const expected = o.expectFile
    ? readFileSync(o.expectFile, 'utf8')
        .split('\n')
        .map((s) => s.trim())
        .filter(Boolean)
    : undefined;
  const report = verifier.report(expected);
  process.stderr.write(formatReport({ ...report, issues: [] }) + '\n');
  return report.ok ? 0 : 1;
}

async function tailKafka(
  config: Config,
  topic: string,
  o: TailOptions,
  onEvent: (e: CloudEvent) => void,
  onBad: (why: string) => void,
  stopped: Promise<void>,
): Promise<void> {
  if (!config.kafkaBrokers?.length) throw new Error('tail --from kafka needs --kafka-brokers');
  const reader = new CommittedReader(
    {
      clientId: `${config.kafkaClientId}-tail`,
      bootstrapBrokers: config.kafkaBrokers,
      ...kafkaConnectionOptions(config),
    },
    topic,
  );
  let done = false;
  void stopped.then(() => (done = true));
  try {
    while (!(await reader.init(o.fromBeginning ? 'beginning' : 'end'))) {
      if (done) return;
      await Promise.race([stopped, new Promise((r) => setTimeout(r, 1000))]);
    }
    while (!done) {
      for (const r of await reader.poll(500)) {
        if (done) break;
        try {
          onEvent(decodeMessage(r.headers, r.value ?? ''));
        } catch (err) {
          onBad(`${r.topic}/${r.partition}@${r.offset}: ${(err as Error).message}`);
        }
      }
    }
  } finally {
    await reader.close();
  }
}

async function tailPubSub(
  config: Config,
  topic: string,
  onEvent: (e: CloudEvent) => void,
  onBad: (why: string) => void,
  stopped: Promise<void>,
): Promise<void> {
  const { PubSub } = await import('@google-cloud/pubsub');
  const projectId =
    config.projectId ??
    process.env.GOOGLE_CLOUD_PROJECT ??
    (process.env.PUBSUB_EMULATOR_HOST ? 'tag-connector' : undefined);
  if (!projectId) throw new Error('tail --from pubsub needs --project-id');
  const client = new PubSub({
    projectId,
    ...(config.serviceAccount ? { keyFilename: config.serviceAccount } : {}),
  });
  const [sub] = await client
    .topic(topic)
    .createSubscription(`tag-connector-tail-${randomUUID().slice(0, 8)}`, { enableMessageOrdering: true });
  sub.on('message', (m) => {
    try {
      onEvent(decodeMessage({ ...m.attributes }, m.data.toString()));
    } catch (err) {
      onBad(`${m.id}: ${(err as Error).message}`);
    }
    m.ack();
  });
  sub.on('error', (err: Error) => process.stderr.write(`tail: pubsub: ${err.message}\n`));
  await stopped;
  await sub.close().catch(() => undefined);
  await sub.delete().catch(() => undefined);
  await client.close().catch(() => undefined);
}
