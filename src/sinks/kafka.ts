import { readFileSync } from 'node:fs';
import {
  Admin,
  Producer,
  ProduceAcks,
  stringSerializers,
  type BaseOptions,
  type MessageToProduce,
  type SASLOptions,
} from '@platformatic/kafka';
import type { Config } from '../config/index.ts';
import type { Logger } from '../log.ts';
import { comparePosition, formatLsn, formatPosition, parseLsn, type Position } from '../util/lsn.ts';
import type { SinkContext } from './context.ts';
import { encodeEvent, type Envelope } from './encode.ts';
import { CommittedReader } from './kafka-reader.ts';
import { DEFAULT_TOPIC, routedTopics, topicRouter } from './route.ts';
import type { OutboundEvent, Sink } from './sink.ts';

/**
 * The Kafka sink (@platformatic/kafka). acks=all, idempotent; message key = the event's partition key,
 * so one entity's events stay in one partition, in commit order.
 *
 * Exactly-once mode (default): each `write(batch)` is one Kafka transaction holding the events and this
 * sink's checkpoint, a record keyed by the slot name in a compacted checkpoint topic. The transactional
 * id is derived from the slot, so a restarted daemon fences its predecessor and the coordinator aborts
 * whatever that one left open. `open()` reads the checkpoint back (read_committed), the runner skips
 * events at or below it: a read_committed consumer sees every change once, across crashes, with no
 * other store. After a failed write (broker gone, commit outcome unknown) the producer is dropped and
 * the checkpoint read again before the retry, so a commit that did succeed is never repeated.
 *
 * Non-transactional mode (`--kafka-exactly-once false`): idempotent sends only, at-least-once, the
 * runner keeps the checkpoint in the state store.
 */

type Msg = MessageToProduce<string, string, string, string>;

export interface KafkaSinkOptions {
  brokers: string[];
  slot: string;
  topic: string;
  routes: Readonly<Record<string, string>>;
  checkpointTopic: string;
  exactlyOnce: boolean;
  envelope: Envelope;
  partitions: number;
  replicationFactor: number;
  clientId: string;
  database: string;
  version: string;
  /** TLS / SASL and timeouts for every client. */
  connection?: Partial<BaseOptions>;
  logger?: Logger;
  /** Per request timeout, and the transaction timeout [15000]. */
  timeoutMs?: number;
  /** Attempts per request inside the client before a write throws [5]. */
  retries?: number;
}

export class KafkaSinkError extends Error {
  readonly code = 'KAFKA_SINK';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KafkaSinkError';
  }
}

export interface KafkaCheckpointValue {
  commitLsn: string;
  seq: number;
  id: string;
  slot: string;
  at: string;
}

export function checkpointValue(slot: string, p: Position, now = new Date()): KafkaCheckpointValue {
  return {
    commitLsn: formatLsn(p.commitLsn),
    seq: p.seq,
    id: formatPosition(p),
    slot,
    at: now.toISOString(),
  };
}

export function parseCheckpointValue(value: string): Position {
  const v = JSON.parse(value) as Partial<KafkaCheckpointValue>;
  if (typeof v.commitLsn !== 'string' || typeof v.seq !== 'number') {
    throw new KafkaSinkError(`bad checkpoint record: ${value.slice(0, 200)}`);
  }
  return { commitLsn: parseLsn(v.commitLsn), seq: v.seq };
}

/** The transactional id of a slot's Kafka sink: stable across restarts, one writer per slot. */
export function transactionalIdFor(clientId: string, slot: string): string {
  return `${clientId}.${slot}`;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new KafkaSinkError(`${what} timed out after ${ms} ms`)), ms);
    }),
  ]);
}

function describe(err: unknown): string {
  const e = err as Error & { errors?: Error[]; code?: string };
  const inner = e.errors?.length ? `: ${e.errors.map((x) => x.message).join('; ')}` : '';
  return `${e.code ? `[${e.code}] ` : ''}${e.message}${inner}`;
}

export class KafkaSink implements Sink {
  readonly name = 'kafka';
  readonly ownsCheckpoint: boolean;
  private readonly o: KafkaSinkOptions;
  private readonly route: (e: OutboundEvent) => string;
  private producer?: Producer<string, string, string, string>;
  /** After a failed write the commit outcome is unknown: read the checkpoint back before writing. */
  private recheck = false;
  private checkpoint: Position | null = null;
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(options: KafkaSinkOptions) {
    this.o = options;
    this.ownsCheckpoint = options.exactlyOnce;
    this.route = topicRouter(options.routes, options.topic);
  }

  private base(suffix: string): BaseOptions {
    return {
      clientId: `${this.o.clientId}-${suffix}`,
      bootstrapBrokers: this.o.brokers,
      timeout: this.o.timeoutMs ?? 15000,
      connectTimeout: 5000,
      retries: this.o.retries ?? 5,
      retryDelay: 500,
      ...this.o.connection,
    };
  }

  async open(): Promise<Position | null> {
    await this.ensureTopics();
    if (!this.o.exactlyOnce) return null;
    // Beginning a transaction initialises the transactional id: it fences an older instance and makes
    // the coordinator finish (abort) any transaction that one left open, so what we read next is final.
    const producer = this.newProducer();
    const tx = await producer.beginTransaction();
    await tx.cancel();
    this.checkpoint = await this.readCheckpoint();
    this.o.logger?.info(
      {
        sink: this.name,
        transactionalId: transactionalIdFor(this.o.clientId, this.o.slot),
        checkpoint: this.checkpoint ? formatPosition(this.checkpoint) : null,
      },
      'kafka checkpoint read',
    );
    return this.checkpoint;
  }

  write(batch: readonly OutboundEvent[]): Promise<void> {
    // Serialised: one transaction at a time, even if a caller overlaps writes.
    const run = this.chain.then(() => this.writeNow(batch));
    this.chain = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.chain;
    await this.dropProducer();
  }

  private newProducer(): Producer<string, string, string, string> {
    this.producer = new Producer<string, string, string, string>({
      ...this.base('producer'),
      idempotent: true,
      acks: ProduceAcks.ALL,
      ...(this.o.exactlyOnce ? { transactionalId: transactionalIdFor(this.o.clientId, this.o.slot) } : {}),
      // @platformatic/kafka 2.12 sends InitProducerId v3+ with producerId 0 / epoch 0 unless told
      // otherwise, and the coordinator answers PRODUCER_FENCED to a restarted process whose
      // transactional id already has another producer id. -1/-1 is what a new producer must send.
      producerId: -1n,
      producerEpoch: -1,
      serializers: stringSerializers,
    });
    return this.producer;
  }

  private async dropProducer(): Promise<void> {
    const p = this.producer;
    this.producer = undefined;
    if (p) await withTimeout(p.close(true), 5000, 'closing the producer').catch(() => undefined);
  }

  private message(e: OutboundEvent): Msg {
    const { headers, value } = encodeEvent(e, this.o.envelope, this.o.database, this.o.version);
    return { topic: this.route(e), key: e.partitionkey, value, headers };
  }

  private async writeNow(batch: readonly OutboundEvent[]): Promise<void> {
    if (this.closed) throw new KafkaSinkError('the kafka sink is closed');
    if (batch.length === 0) return;
    const producer = this.producer ?? this.newProducer();
    if (!this.o.exactlyOnce) {
      try {
        await producer.send({ messages: batch.map((e) => this.message(e)) });
      } catch (err) {
        await this.dropProducer();
        throw new KafkaSinkError(`kafka send failed: ${describe(err)}`, { cause: err });
      }
      return;
    }
    let tx: Awaited<ReturnType<typeof producer.beginTransaction>> | undefined;
    try {
      tx = await producer.beginTransaction();
      let todo = batch;
      if (this.recheck) {
        this.checkpoint = await this.readCheckpoint();
        this.recheck = false;
        const cp = this.checkpoint;
        if (cp) todo = batch.filter((e) => comparePosition(e.position, cp) > 0);
        if (todo.length < batch.length) {
          this.o.logger?.warn(
            { sink: this.name, skipped: batch.length - todo.length, checkpoint: cp && formatPosition(cp) },
            'kafka: the failed write had committed; not writing it again',
          );
        }
      }
      if (todo.length === 0) {
        await tx.cancel();
        return;
      }
      const last = todo[todo.length - 1]!.position;
      const messages = todo.map((e) => this.message(e));
      messages.push({
        topic: this.o.checkpointTopic,
        key: this.o.slot,
        value: JSON.stringify(checkpointValue(this.o.slot, last)),
      });
      await tx.send({ messages });
      await tx.commit();
      this.checkpoint = last;
    } catch (err) {
      if (tx && !tx.completed) {
        await withTimeout(tx.abort(), 5000, 'abort').catch(() => undefined);
      }
      // A new producer with the same transactional id bumps the epoch: whatever is left open is aborted.
      await this.dropProducer();
      this.recheck = true;
      throw new KafkaSinkError(`kafka transaction failed: ${describe(err)}`, { cause: err });
    }
  }

  /** Creates the event topics and the compacted checkpoint topic when missing. */
  private async ensureTopics(): Promise<void> {
    const admin = new Admin(this.base('admin'));
    try {
      const existing = new Set(await admin.listTopics());
      const wanted = routedTopics(this.o.routes, this.o.topic).filter((t) => !existing.has(t));
      const create = async (
        topics: string[],
        partitions: number,
        configs: { name: string; value: string }[],
      ) => {
        if (topics.length === 0) return;
        try {
          await admin.createTopics({ topics, partitions, replicas: this.o.replicationFactor, configs });
        } catch (err) {
          if (!/already exists/i.test(describe(err))) throw err;
        }
      };
      await create(wanted, this.o.partitions, []);
      if (this.o.exactlyOnce && !existing.has(this.o.checkpointTopic)) {
        await create([this.o.checkpointTopic], 1, [
          { name: 'cleanup.policy', value: 'compact' },
          { name: 'min.compaction.lag.ms', value: '60000' },
        ]);
      }
    } catch (err) {
      throw new KafkaSinkError(
        `kafka: cannot reach the brokers ${this.o.brokers.join(',')} or create topics: ${describe(err)}`,
        { cause: err },
      );
    } finally {
      await admin.close().catch(() => undefined);
    }
  }

  /** The latest committed checkpoint record of our slot (read_committed), or null. */
  async readCheckpoint(): Promise<Position | null> {
    return readKafkaCheckpoint(this.base('checkpoint-reader'), this.o.checkpointTopic, this.o.slot);
  }
}

/**
 * Reads the compacted checkpoint topic from its start to the last stable offset (read_committed, aborted
 * transactions filtered by us) and returns the latest committed value for `key`, or null.
 */
export async function readKafkaCheckpoint(
  base: BaseOptions,
  topic: string,
  key: string,
): Promise<Position | null> {
  const reader = new CommittedReader(base, topic);
  try {
    if (!(await reader.init('beginning'))) return null;
    let found: Position | null = null;
    await reader.readToEnd((records) => {
      for (const r of records) {
        if (r.key !== key || !r.value) continue;
        const pos = parseCheckpointValue(r.value);
        if (!found || comparePosition(pos, found) > 0) found = pos;
      }
    });
    return found;
  } finally {
    await reader.close();
  }
}

/** TLS / SASL options for every Kafka client, from the config. */
export function kafkaConnectionOptions(config: Config): Partial<BaseOptions> {
  const out: Partial<BaseOptions> = {};
  if (config.kafkaTls || config.kafkaCaFile) {
    out.tls = config.kafkaCaFile ? { ca: readFileSync(config.kafkaCaFile) } : {};
  }
  if (config.kafkaSaslMechanism) {
    const sasl: SASLOptions = {
      mechanism: config.kafkaSaslMechanism.toUpperCase() as SASLOptions['mechanism'],
      username: config.kafkaSaslUsername,
      password: config.kafkaSaslPassword,
    };
    out.sasl = sasl;
  }
  return out;
}

export async function createKafkaSink(ctx: SinkContext): Promise<Sink> {
  const c = ctx.config;
  if (!c.kafkaBrokers?.length) {
    throw new KafkaSinkError('--sink kafka needs --kafka-brokers host:port[,host:port...]');
  }
  return new KafkaSink({
    brokers: c.kafkaBrokers,
    slot: c.slot,
    topic: c.topic ?? DEFAULT_TOPIC,
    routes: c.topicRoutes,
    checkpointTopic: c.kafkaCheckpointTopic,
    exactlyOnce: c.kafkaExactlyOnce,
    envelope: c.envelope,
    partitions: c.kafkaPartitions,
    replicationFactor: c.kafkaReplicationFactor,
    clientId: c.kafkaClientId,
    database: ctx.database,
    version: ctx.version,
    connection: kafkaConnectionOptions(c),
    logger: ctx.logger,
  });
}
