import { Admin, Producer, type BaseOptions } from '@platformatic/kafka';
import type { Logger } from '../../log.ts';
import { comparePosition, formatPosition, type Position } from '../../util/lsn.ts';
import { routedTopics } from '../route.ts';
import {
  checkpointKeyFor,
  checkpointValue,
  readKafkaCheckpoint,
  resetValue,
  transactionalIdFor,
} from './checkpoint.ts';
import type { SinkReset, StoredCheckpoint } from '../origin.ts';
import { KafkaMessageEncoder } from './encoder.ts';
import { describe, KafkaSinkError, withTimeout } from './errors.ts';
import { headerBlocks } from './headers.ts';
import { waitForLeaders } from './leaders.ts';
import {
  DEFAULT_KAFKA_COMPRESSION,
  kafkaBaseOptions,
  kafkaProducerOptions,
  MAX_REQUEST_BYTES,
  type KafkaProducer,
  type KafkaSinkOptions,
  type Msg,
  type Transaction,
} from './options.ts';
import { produceTarget, produceVersion, Sequences, type PartitionBatch } from './produce.ts';
import { partitionOf, recordBatch } from './records.ts';
import { PARTITION_SPAN, recordsSize, writeRecords, type RecordParts } from './record-parts.ts';
import { addAllPartitions, coordinatorBusy, EMPTY, OPEN_PATIENCE_MS, settleAll } from './transactions.ts';
import { asBuffer, packed, positionOf, startOf, type WireBatch } from './wire-batch.ts';

export type SinkLogger = Pick<Logger, 'info' | 'warn'>;

/**
 * The producer side of the sink: topics, the producer, transactions and the checkpoint. It runs in the
 * sink's own thread (see KafkaSink), or in-process.
 */
export class KafkaWriter {
  private readonly o: KafkaSinkOptions;
  private readonly log?: SinkLogger;
  private readonly encoder: KafkaMessageEncoder;
  private producer?: KafkaProducer;
  /** The Produce version for record batches of our own with this producer; null: the client's send. */
  private produceVersion?: 9 | 10 | 11 | null;
  private readonly sequences = new Sequences();
  /** Where a partition's records are written before compression (reused: see WireBufferPool). */
  private scratch = Buffer.alloc(0);
  /** After a failed write the commit outcome is unknown: read the checkpoint back before writing. */
  private recheck = false;
  private checkpoint: Position | null = null;
  private closed = false;

  constructor(options: KafkaSinkOptions, log?: SinkLogger) {
    this.o = options;
    this.log = log;
    this.encoder = new KafkaMessageEncoder(options.envelope, options.database, options.version);
  }

  base(suffix: string): BaseOptions {
    return kafkaBaseOptions(this.o, suffix);
  }

  /** Creates the topics; in exactly-once mode fences older instances and returns the checkpoint. */
  async open(): Promise<StoredCheckpoint | null> {
    await this.ensureTopics();
    if (!this.o.exactlyOnce) return null;
    // Beginning a transaction initialises the transactional id: it fences an older instance and makes
    // the coordinator finish (abort) any transaction that one left open, so what we read next is final.
    await this.fence();
    const stored = await readKafkaCheckpoint(this.base('checkpoint-reader'), this.o.checkpointTopic, this.o);
    this.checkpoint = stored?.position ?? null;
    this.log?.info(
      {
        sink: 'kafka',
        transactionalId: transactionalIdFor(this.o.clientId, this.o),
        checkpointKey: checkpointKeyFor(this.o),
        checkpoint: this.checkpoint ? formatPosition(this.checkpoint) : null,
      },
      'kafka checkpoint read',
    );
    return stored;
  }

  /** Commits a reset record (--reset-sink-checkpoints): the checkpoint is forgotten, the reset kept. */
  async writeReset(reset: SinkReset): Promise<void> {
    const producer = this.producer ?? this.newProducer();
    let tx: Transaction | undefined;
    try {
      tx = await producer.beginTransaction();
      await tx.send({
        messages: [
          {
            topic: this.o.checkpointTopic,
            key: Buffer.from(checkpointKeyFor(this.o)),
            value: Buffer.from(JSON.stringify(resetValue(this.o, reset))),
          },
        ],
      });
      await tx.commit();
      this.checkpoint = null;
    } catch (err) {
      if (tx && !tx.completed) await withTimeout(tx.abort(), 5000, 'abort').catch(() => undefined);
      await this.dropProducer();
      throw new KafkaSinkError(`kafka: writing the checkpoint reset failed: ${describe(err)}`, {
        cause: err,
      });
    }
  }

  /** The outcome of a write in flight is unknown (e.g. the thread running it died): recheck first. */
  uncertain(): void {
    this.recheck = true;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.dropProducer();
  }

  /**
   * Begins (and cancels) a first transaction: that initialises the transactional id, which fences an
   * older instance and makes the coordinator abort what that one left open. Until it has, InitProducerId
   * answers CONCURRENT_TRANSACTIONS, on a busy broker for longer than the client's retries (about 31 ms),
   * so a fresh producer tries again for OPEN_PATIENCE_MS. (A fresh one: the client keeps a failed
   * beginTransaction's transaction as active, and refuses the next on the same producer.)
   */
  private async fence(): Promise<void> {
    const deadline = Date.now() + OPEN_PATIENCE_MS;
    for (;;) {
      const producer = this.newProducer();
      try {
        const tx = await producer.beginTransaction();
        await tx.cancel();
        return;
      } catch (err) {
        await this.dropProducer();
        if (!coordinatorBusy(err) || Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  private newProducer(): KafkaProducer {
    this.produceVersion = undefined;
    this.producer = new Producer(
      kafkaProducerOptions(this.base('producer'), {
        transactionalId: this.o.exactlyOnce ? transactionalIdFor(this.o.clientId, this.o) : undefined,
        compression: this.o.compression,
      }),
    );
    return this.producer;
  }

  private async dropProducer(): Promise<void> {
    const p = this.producer;
    this.producer = undefined;
    if (p) await withTimeout(p.close(true), 5000, 'closing the producer').catch(() => undefined);
  }

  async write(batch: WireBatch): Promise<void> {
    if (this.closed) throw new KafkaSinkError('the kafka sink is closed');
    const n = batch.ends.length;
    if (n === 0) return;
    const producer = this.producer ?? this.newProducer();
    if (!this.o.exactlyOnce) {
      try {
        await this.produce(producer, undefined, batch, 0);
      } catch (err) {
        await this.dropProducer();
        throw new KafkaSinkError(`kafka send failed: ${describe(err)}`, { cause: err });
      }
      return;
    }
    let tx: Transaction | undefined;
    try {
      tx = await producer.beginTransaction();
      // events are in stream order: those above the checkpoint are a suffix of the batch
      let from = 0;
      if (this.recheck) {
        this.checkpoint = await this.readCheckpoint();
        this.recheck = false;
        const cp = this.checkpoint;
        if (cp) while (from < n && comparePosition(positionOf(batch, from), cp) <= 0) from++;
        if (from > 0) {
          this.log?.warn(
            { sink: 'kafka', skipped: from, checkpoint: cp && formatPosition(cp) },
            'kafka: the failed write had committed; not writing it again',
          );
        }
      }
      if (from === n) {
        await tx.cancel();
        return;
      }
      const last = positionOf(batch, n - 1);
      await this.produce(producer, tx, batch, from, {
        topic: this.o.checkpointTopic,
        key: Buffer.from(checkpointKeyFor(this.o)),
        value: Buffer.from(JSON.stringify(checkpointValue(this.o, last))),
      });
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

  /**
   * Sends events [from, n) of a batch (and `checkpoint` last), in `tx` if given: each Produce request
   * of at most MAX_REQUEST_BYTES goes out as soon as it is encoded, the next encoded while the broker
   * works on it (a batch that fits one request goes as one send, which adds the partitions it uses).
   */
  private async produce(
    producer: KafkaProducer,
    tx: Transaction | undefined,
    batch: WireBatch,
    from: number,
    checkpoint?: Msg,
  ): Promise<void> {
    if (this.produceVersion === undefined) {
      this.produceVersion = this.o.ownRecordBatches === false ? null : await produceVersion(producer);
      if (this.produceVersion === null)
        this.log?.info(
          { sink: 'kafka' },
          "kafka: the brokers predate Produce v9; the client's own send is used",
        );
    }
    if (this.produceVersion !== null)
      return this.produceRecordBatches(producer, tx, batch, from, this.produceVersion, checkpoint);
    const target = tx ?? producer;
    const sends: Promise<unknown>[] = [];
    const { ends, keyEnds, headerEnds } = batch;
    // transferred typed arrays arrive as such: the same memory, seen as Buffers (asBuffer)
    const bytes = asBuffer(batch.bytes);
    const keys = asBuffer(batch.keys);
    const headers = batch.headers && asBuffer(batch.headers);
    let request: Msg[] = [];
    let size = 0;
    for (let i = from; i < ends.length; i++) {
      const value = packed(bytes, ends, i);
      const key = packed(keys, keyEnds, i);
      const topic = batch.topics[batch.topic[i]!]!;
      // an empty block: the scan in toWireBatch found no attributes, the encoder parses the event
      const block = headers && headerEnds ? packed(headers, headerEnds, i) : undefined;
      const tombstone = batch.tombstone?.[i] === 1;
      // a tombstone: the key and a null value
      const m: Msg = tombstone
        ? { topic, key }
        : block?.length && headerBlocks()
          ? this.encoder.withBlock(topic, value, key, block)
          : this.encoder.encode(topic, value, key);
      const mSize = tombstone ? key.length + 32 : this.encoder.size;
      if (request.length > 0 && size + mSize > MAX_REQUEST_BYTES) {
        // several requests: in a transaction, every partition they may write to is added first
        if (tx && sends.length === 0)
          await addAllPartitions(
            producer,
            tx,
            checkpoint ? [...batch.topics, checkpoint.topic] : batch.topics,
          );
        sends.push(target.send({ messages: request }));
        request = [];
        size = 0;
      }
      request.push(m);
      size += mSize;
    }
    if (checkpoint) request.push(checkpoint);
    sends.push(target.send({ messages: request }));
    await settleAll(sends);
  }

  /**
   * `produce` with record batches written here (records.ts) rather than the client's per-message
   * send: per Produce request of at most MAX_REQUEST_BYTES (uncompressed), one record batch per
   * partition, written straight from the WireBatch's packed bytes; each request goes out as soon as
   * it is written, the next written while the broker works on it. Partitions as the client path picks them
   * (the Java client's murmur2 partitioner, set in options.ts), so a key's partition does not change
   * with the path.
   */
  private async produceRecordBatches(
    producer: KafkaProducer,
    tx: Transaction | undefined,
    batch: WireBatch,
    from: number,
    version: 9 | 10 | 11,
    checkpoint?: Msg,
  ): Promise<void> {
    const topics = checkpoint ? [...batch.topics, checkpoint.topic] : batch.topics;
    const names = [...new Set(topics)];
    const metadata = await producer.metadata({ topics: names });
    if (tx) await addAllPartitions(producer, tx, names, metadata);
    else if (producer.producerId === undefined) await producer.initIdempotentProducer({});
    const producerId = producer.producerId;
    const epoch = producer.producerEpoch;
    if (producerId === undefined || epoch === undefined)
      throw new KafkaSinkError('kafka: the producer has no producer id');
    const target = await produceTarget(
      producer,
      metadata,
      names,
      version,
      tx ? tx.id : null,
      this.o.timeoutMs ?? 15000,
    );
    const counts = topics.map((t) => metadata.topics.get(t)!.partitionsCount);
    await this.writeRecordBatches(
      batch,
      from,
      counts,
      (b) => target.send(b),
      producerId,
      epoch,
      !!tx,
      checkpoint,
    );
  }

  /**
   * The I/O-free part of produceRecordBatches: events [from, n) of `batch` (and `checkpoint` last) as
   * record batches, handed to `send` one request's worth at a time. `counts[t]` is the partition count
   * of topic t (the checkpoint's topic one past the batch's).
   */
  async writeRecordBatches(
    batch: WireBatch,
    from: number,
    counts: readonly number[],
    send: (batches: PartitionBatch[]) => Promise<void>,
    producerId: bigint,
    epoch: number,
    transactional: boolean,
    checkpoint?: Msg,
  ): Promise<void> {
    const parts: RecordParts = {
      bytes: asBuffer(batch.bytes),
      keys: asBuffer(batch.keys),
      headers: batch.headers ? asBuffer(batch.headers) : EMPTY,
      batch,
      partition: new Uint32Array(batch.ends.length),
      slow: [],
      checkpoint,
      checkpointTopic: batch.topics.length,
      checkpointPartition: 0,
    };
    const { ends, keyEnds, headerEnds } = batch;
    const n = ends.length;
    const sends: Promise<void>[] = [];
    let first = from;
    let size = 0;
    for (let i = from; i < n; i++) {
      const valueStart = startOf(ends, i);
      const keyStart = startOf(keyEnds, i);
      parts.partition[i] = partitionOf(parts.keys, keyStart, keyEnds[i]!, counts[batch.topic[i]!]!);
      let headerBytes = headerEnds ? headerEnds[i]! - startOf(headerEnds, i) : 0;
      let valueBytes = ends[i]! - valueStart;
      if (batch.tombstone?.[i])
        headerBytes = 1; // a null value, no headers (record-parts.ts)
      else if (headerBytes === 0) {
        // no block from toWireBatch (binary envelope, or attributes the scan did not find)
        const r = this.encoder.record(
          parts.bytes.subarray(valueStart, ends[i]!),
          parts.keys.subarray(keyStart, keyEnds[i]!),
        );
        parts.slow[i] = r;
        headerBytes = r.headers.length;
        valueBytes = r.value.length;
      }
      const bytes = 24 + 2 * (keyEnds[i]! - keyStart) + valueBytes + headerBytes;
      if (i > first && size + bytes > MAX_REQUEST_BYTES) {
        sends.push(send(this.partitionBatches(parts, first, i, false, producerId, epoch, transactional)));
        first = i;
        size = 0;
      }
      size += bytes;
    }
    if (checkpoint)
      parts.checkpointPartition = partitionOf(
        checkpoint.key!,
        0,
        checkpoint.key!.length,
        counts[batch.topics.length]!,
      );
    sends.push(send(this.partitionBatches(parts, first, n, !!checkpoint, producerId, epoch, transactional)));
    await settleAll(sends);
  }

  /** Events [a, b) of a batch (and its checkpoint record when `withCheckpoint`) as record batches, one per partition. */
  private partitionBatches(
    p: RecordParts,
    a: number,
    b: number,
    withCheckpoint: boolean,
    producerId: bigint,
    epoch: number,
    transactional: boolean,
  ): PartitionBatch[] {
    const { batch } = p;
    // events by (topic, partition), in stream order; -1 stands for the checkpoint record
    const groups = new Map<number, number[]>();
    const add = (topic: number, partition: number, i: number) => {
      const g = topic * PARTITION_SPAN + partition;
      const list = groups.get(g);
      if (list) list.push(i);
      else groups.set(g, [i]);
    };
    for (let i = a; i < b; i++) add(batch.topic[i]!, p.partition[i]!, i);
    if (withCheckpoint) add(p.checkpointTopic, p.checkpointPartition, -1);
    const out: PartitionBatch[] = [];
    const timestamp = Date.now();
    for (const [g, list] of groups) {
      const topicIndex = Math.floor(g / PARTITION_SPAN);
      const topic = topicIndex === p.checkpointTopic ? p.checkpoint!.topic : batch.topics[topicIndex]!;
      const partition = g % PARTITION_SPAN;
      const size = recordsSize(p, list);
      if (this.scratch.length < size)
        this.scratch = Buffer.allocUnsafe(Math.max(size, 2 * this.scratch.length));
      // recordBatch copies (or compresses) the records before the scratch is written again
      const records = writeRecords(p, list, this.scratch.subarray(0, size));
      out.push({
        topic,
        partition,
        batch: recordBatch(records, {
          count: list.length,
          producerId,
          producerEpoch: epoch,
          baseSequence: this.sequences.take(producerId, epoch, topic, partition, list.length),
          transactional,
          compression: this.o.compression ?? DEFAULT_KAFKA_COMPRESSION,
          timestamp,
        }),
      });
    }
    return out;
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
      const created = [...wanted];
      if (this.o.exactlyOnce && !existing.has(this.o.checkpointTopic)) {
        await create([this.o.checkpointTopic], 1, [
          { name: 'cleanup.policy', value: 'compact' },
          { name: 'min.compaction.lag.ms', value: '60000' },
        ]);
        created.push(this.o.checkpointTopic);
      }
      await waitForLeaders(admin, created);
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
    return (
      (await readKafkaCheckpoint(this.base('checkpoint-reader'), this.o.checkpointTopic, this.o))?.position ??
      null
    );
  }
}
