/**
 * Produce requests of record batches we wrote ourselves (records.ts), sent on the connections
 * of a @platformatic/kafka Producer, with that producer's id and epoch, and our own sequence numbers.
 *
 * The client keeps its own per-partition sequences for what it sends: a producer used here sends no
 * event records through the client (only transaction control), so the two never share a partition.
 */
import {
  createAPI,
  produceV9,
  produceV10,
  produceV11,
  Writer,
  type ClusterMetadata,
  type Connection,
  type Producer,
} from '@platformatic/kafka';
import { nextSequence, type RecordBatch } from './records.ts';

type KafkaProducer = Producer<Buffer, Buffer, Buffer, Buffer>;

/** One partition's record batch in a Produce request. */
export interface PartitionBatch {
  topic: string;
  partition: number;
  batch: RecordBatch;
}

/** Produce v9–v11 share the request layout (v10/v11 only add tagged fields to the response). */
function createRequest(
  transactionalId: string | null,
  acks: number,
  timeoutMs: number,
  topics: [string, PartitionBatch[]][],
): Writer {
  return Writer.create()
    .appendString(transactionalId)
    .appendInt16(acks)
    .appendInt32(timeoutMs)
    .appendArray(topics, (w, [topic, partitions]) => {
      w.appendString(topic).appendArray(partitions, (w, p) => {
        w.appendInt32(p.partition)
          .appendUnsignedVarInt(p.batch.head.length + p.batch.payload.length + 1)
          .append(p.batch.head)
          .append(p.batch.payload);
      });
    })
    .appendTaggedFields();
}

const PARSERS = { 9: produceV9.parseResponse, 10: produceV10.parseResponse, 11: produceV11.parseResponse };
type ProduceVersion = keyof typeof PARSERS;
type ProduceApi = (
  connection: Connection,
  transactionalId: string | null,
  acks: number,
  timeoutMs: number,
  topics: [string, PartitionBatch[]][],
  callback: (error: Error | null) => void,
) => void;
const APIS = new Map<ProduceVersion, ProduceApi>(
  ([9, 10, 11] as const).map((v) => [v, createAPI(0, v, createRequest, PARSERS[v]) as unknown as ProduceApi]),
);

/** The Produce version to use with the brokers, or null when they predate v9 (Kafka < 2.4). */
export async function produceVersion(producer: KafkaProducer): Promise<ProduceVersion | null> {
  const apis = await producer.listApis();
  const produce = apis.find((a) => a.apiKey === 0);
  if (!produce || produce.maxVersion < 9 || produce.minVersion > 11) return null;
  return Math.min(11, produce.maxVersion) as ProduceVersion;
}

/**
 * The next sequence number of each partition for one producer id and epoch; a new producer (a new
 * epoch) starts every partition at 0 again.
 */
export class Sequences {
  private producerId = -1n;
  private epoch = -1;
  private readonly next = new Map<string, number>();

  /** Takes `count` sequence numbers of topic/partition; returns the first. */
  take(producerId: bigint, epoch: number, topic: string, partition: number, count: number): number {
    if (producerId !== this.producerId || epoch !== this.epoch) {
      this.next.clear();
      this.producerId = producerId;
      this.epoch = epoch;
    }
    const key = `${topic}\u0000${partition}`;
    const first = this.next.get(key) ?? 0;
    this.next.set(key, nextSequence(first, count));
    return first;
  }
}

/**
 * Where a write's Produce requests go: the connection to each partition leader of its topics, taken
 * before any request is sent, so that `send` writes its requests at once, in call order. A later
 * call's batches for a partition then never overtake an earlier call's on the connection (their
 * sequence numbers stay in order) while the broker works on one request and we encode the next.
 */
export class ProduceTarget {
  private readonly metadata: ClusterMetadata;
  private readonly connections: Map<number, Connection>;
  private readonly api: ProduceApi;
  private readonly transactionalId: string | null;
  private readonly timeoutMs: number;

  constructor(
    metadata: ClusterMetadata,
    connections: Map<number, Connection>,
    api: ProduceApi,
    transactionalId: string | null,
    timeoutMs: number,
  ) {
    this.metadata = metadata;
    this.connections = connections;
    this.api = api;
    this.transactionalId = transactionalId;
    this.timeoutMs = timeoutMs;
  }

  /** One Produce request per leader; resolves when all are acknowledged, else rejects with the first failure. */
  send(batches: PartitionBatch[]): Promise<void> {
    const byLeader = new Map<number, Map<string, PartitionBatch[]>>();
    for (const b of batches) {
      const leader = this.metadata.topics.get(b.topic)?.partitions[b.partition]?.leader;
      if (leader === undefined)
        return Promise.reject(new Error(`no leader known for ${b.topic}/${b.partition}`));
      let topics = byLeader.get(leader);
      if (!topics) byLeader.set(leader, (topics = new Map()));
      const list = topics.get(b.topic);
      if (list) list.push(b);
      else topics.set(b.topic, [b]);
    }
    const sent: Promise<void>[] = [];
    for (const [leader, topics] of byLeader) {
      const connection = this.connections.get(leader);
      if (!connection) return Promise.reject(new Error(`no connection to broker ${leader}`));
      sent.push(
        new Promise<void>((resolve, reject) =>
          this.api(connection, this.transactionalId, -1, this.timeoutMs, [...topics], (err) =>
            err ? reject(err) : resolve(),
          ),
        ),
      );
    }
    return Promise.all(sent).then(() => undefined);
  }
}

/** A ProduceTarget for `topics` (every partition leader's connection opened first). */
export async function produceTarget(
  producer: KafkaProducer,
  metadata: ClusterMetadata,
  topics: Iterable<string>,
  version: ProduceVersion,
  transactionalId: string | null,
  timeoutMs: number,
): Promise<ProduceTarget> {
  const leaders = new Set<number>();
  for (const t of topics) {
    const topic = metadata.topics.get(t);
    if (!topic) throw new Error(`topic ${t} is not in the metadata`);
    for (const p of topic.partitions) leaders.add(p.leader);
  }
  const connections = new Map<number, Connection>();
  for (const leader of leaders) {
    const broker = metadata.brokers.get(leader);
    if (!broker) throw new Error(`broker ${leader} is not in the metadata`);
    connections.set(leader, await producer.connections.get(broker));
  }
  return new ProduceTarget(metadata, connections, APIS.get(version)!, transactionalId, timeoutMs);
}
