import { readFileSync } from 'node:fs';
import { Admin, type BaseOptions, type SASLOptions } from '@platformatic/kafka';
import type { Position } from '../../util/lsn.ts';
import type { KafkaConnectionConfig, KafkaSinkConfig, SinkContext } from '../context.ts';
import { asPacked, type PackedBatch, type SinkBatch } from '../batch.ts';
import { configRoutes, DEFAULT_TOPIC, routedTopics, topicRoute } from '../route.ts';
import type { Sink } from '../sink.ts';
import type { CheckpointOrigin, SinkReset, StoredCheckpoint } from '../origin.ts';
import { AvroEventEncoder } from '../avro/encoder.ts';
import { SchemaRegistryClient } from '../avro/registry.ts';
import { AvroShapeError } from '../avro/schema.ts';
import { toAvroWireBatch } from './avro-batch.ts';
import { readKafkaCheckpoint } from './checkpoint.ts';
import { KafkaSinkError, withTimeout } from './errors.ts';
import { kafkaBaseOptions, type KafkaSinkOptions } from './options.ts';
import { KafkaThread, KafkaThreadError } from './thread.ts';
import {
  tombstonesFor,
  toWireBatch,
  WireBufferPool,
  type TombstonePolicy,
  type WireBatch,
} from './wire-batch.ts';
import { KafkaWriter } from './writer.ts';

/**
 * The Kafka sink. The producer side (KafkaWriter) runs in a thread of its own by default; the main
 * thread only routes each event and hands its JSON and key over. `thread: false` keeps it in-process.
 */
export class KafkaSink implements Sink {
  readonly name = 'kafka';
  readonly ownsCheckpoint: boolean;
  private readonly o: KafkaSinkOptions;
  private route: (type: string, table: string) => string;
  private tombstones?: TombstonePolicy;
  private thread?: KafkaThread;
  private writer?: KafkaWriter;
  /** Producing from a thread of the sink's own (see KafkaThread), else on the caller's. */
  private threaded: boolean;
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;
  private readonly pool = new WireBufferPool();
  private stored: StoredCheckpoint | null = null;
  /** Avro values with a schema registry (--schema-registry): encoded on this thread, before the write. */
  private readonly avro?: AvroEventEncoder;

  constructor(options: KafkaSinkOptions, avro?: AvroEventEncoder) {
    this.o = options;
    if (avro) this.avro = avro;
    this.ownsCheckpoint = options.exactlyOnce;
    this.route = topicRoute(options.routes, options.topic);
    this.tombstones = tombstonesFor(options.tombstoneTables ?? []);
    this.threaded = options.thread !== false;
  }

  async open(): Promise<Position | null> {
    this.stored = await this.openStored();
    return this.stored?.position ?? null;
  }

  storedOrigin(): CheckpointOrigin | null {
    return this.stored?.origin ?? null;
  }

  /** The origin is in the options already (key, transactional id); a reset commits a reset record. */
  async bindOrigin(_origin: CheckpointOrigin, reset?: SinkReset): Promise<void> {
    if (!reset || !this.ownsCheckpoint) return;
    if (this.threaded) {
      if (!this.thread || this.thread.dead) await this.openThread(true);
      await this.thread!.call({ op: 'reset', reset });
    } else await this.inProcess().writeReset(reset);
    this.stored = null;
  }

  private async openStored(): Promise<StoredCheckpoint | null> {
    if (this.threaded) {
      try {
        return await this.openThread(false);
      } catch (err) {
        if (!(err instanceof KafkaThreadError)) throw err;
        // the thread could not start (or its options not be cloned into it): produce in-process
        this.o.logger?.warn({ sink: this.name, err: err.message }, 'kafka: producing in-process');
        this.threaded = false;
        await this.thread?.terminate();
        this.thread = undefined;
      }
    }
    return this.inProcess().open();
  }

  private inProcess(): KafkaWriter {
    this.writer ??= new KafkaWriter(this.o, this.o.logger);
    return this.writer;
  }

  private async openThread(uncertain: boolean): Promise<StoredCheckpoint | null> {
    const { logger, ...options } = this.o;
    try {
      this.thread = new KafkaThread(options, logger, this.pool);
    } catch (err) {
      throw new KafkaThreadError(`cannot start the kafka sink's thread: ${(err as Error).message}`);
    }
    return this.thread.call<StoredCheckpoint | null>({ op: 'open', uncertain });
  }

  /**
   * A record the broker refuses whatever the retries: bigger than the topic's max.message.bytes (the
   * broker's message.max.bytes), or a record batch the broker takes for corrupt. The error arrives as
   * text from the sink's thread, so it is told by the Kafka error names and the broker's message.
   */
  rejection(err: Error): string | undefined {
    if (err instanceof AvroShapeError) return `does not fit its Avro schema: ${err.message}`;
    const m =
      /MESSAGE_TOO_LARGE|RECORD_LIST_TOO_LARGE|INVALID_RECORD\b|larger than the max message size/i.exec(
        err.message,
      );
    return m ? `rejected by the broker: ${m[0]}` : undefined;
  }

  async setRoutes(
    routes: Readonly<Record<string, string>>,
    tombstoneTables: readonly string[],
  ): Promise<void> {
    // New topics first (as open() makes them), so the next batch finds them.
    const admin = new Admin(kafkaBaseOptions(this.o, 'admin'));
    try {
      const existing = new Set(await admin.listTopics());
      const wanted = routedTopics(routes, this.o.topic).filter((t) => !existing.has(t));
      if (wanted.length)
        await admin
          .createTopics({
            topics: wanted,
            partitions: this.o.partitions,
            replicas: this.o.replicationFactor,
          })
          .catch((err: Error) => {
            if (!/already exists/i.test(err.message)) throw err;
          });
    } finally {
      await admin.close().catch(() => undefined);
    }
    this.route = topicRoute(routes, this.o.topic);
    this.tombstones = tombstonesFor(tombstoneTables);
  }

  topicOf(event: { type: string; table: string }): string {
    return this.route(event.type, event.table);
  }

  /**
   * The batch's wire form, built on the caller's thread while the previous transaction runs (not for
   * Avro: its schemas may need registering first, which the write does).
   */
  prepare(batch: PackedBatch): WireBatch | undefined {
    if (this.avro) return undefined;
    return toWireBatch(batch, this.route, this.o.envelope, this.pool, this.tombstones);
  }

  write(batch: SinkBatch, prepared?: unknown): Promise<void> {
    // Serialised: one transaction at a time, even if a caller overlaps writes.
    const run = this.chain.then(() => this.writeNow(batch, prepared as WireBatch | undefined));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async writeNow(batch: SinkBatch, prepared?: WireBatch): Promise<void> {
    if (this.closed) throw new KafkaSinkError('the kafka sink is closed');
    if (batch.length === 0) return;
    const wire =
      prepared ??
      (this.avro
        ? await toAvroWireBatch(asPacked(batch), this.route, this.avro, this.pool, this.tombstones)
        : toWireBatch(asPacked(batch), this.route, this.o.envelope, this.pool, this.tombstones));
    if (!this.threaded) {
      await this.inProcess().write(wire);
      this.pool.give(wire.buffer);
      return;
    }
    // A thread that died took the outcome of its last write with it: the new one reads the checkpoint.
    if (!this.thread || this.thread.dead) await this.openThread(true);
    await this.thread!.call({ op: 'write', batch: wire }, [wire.buffer]);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.chain;
    await this.writer?.close();
    const t = this.thread;
    if (t && !t.dead) {
      await withTimeout(t.call({ op: 'close' }), 10_000, 'closing the kafka thread').catch(() => undefined);
      await t.terminate();
    }
  }

  /** The latest committed checkpoint record of our slot (read_committed), or null. */
  async readCheckpoint(): Promise<Position | null> {
    const cp = await readKafkaCheckpoint(
      kafkaBaseOptions(this.o, 'checkpoint-reader'),
      this.o.checkpointTopic,
      this.o,
    );
    return cp?.position ?? null;
  }
}

/** TLS / SASL options for every Kafka client, from the config. */
export function kafkaConnectionOptions(config: KafkaConnectionConfig): Partial<BaseOptions> {
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

export async function createKafkaSink(ctx: SinkContext<KafkaSinkConfig>): Promise<Sink> {
  const c = ctx.config;
  if (!c.kafkaBrokers?.length) {
    throw new KafkaSinkError('--sink kafka needs --kafka-brokers host:port[,host:port...]');
  }
  let avro: AvroEventEncoder | undefined;
  if (c.schemaRegistry) {
    if (!ctx.tableColumns)
      throw new KafkaSinkError('--schema-registry: Avro values are written by extract-tasks only');
    avro = new AvroEventEncoder(new SchemaRegistryClient({ url: c.schemaRegistry }), ctx.tableColumns);
  }
  return new KafkaSink(
    {
      brokers: c.kafkaBrokers,
      slot: c.slot,
      ...(ctx.origin ? { origin: ctx.origin } : {}),
      topic: c.topic ?? DEFAULT_TOPIC,
      routes: configRoutes(c),
      tombstoneTables: Object.keys(c.tableRules).filter((t) => c.tableRules[t]!.tombstones),
      checkpointTopic: c.kafkaCheckpointTopic,
      exactlyOnce: c.kafkaExactlyOnce,
      envelope: c.envelope,
      partitions: c.kafkaPartitions,
      replicationFactor: c.kafkaReplicationFactor,
      clientId: c.kafkaClientId,
      compression: c.kafkaCompression,
      thread: c.kafkaThread,
      database: ctx.database,
      version: ctx.version,
      connection: kafkaConnectionOptions(c),
      logger: ctx.logger,
    },
    avro,
  );
}
