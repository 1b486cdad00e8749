import {
  Consumer,
  FetchIsolationLevels,
  type BaseOptions,
  type ClusterTopicMetadata,
  type KafkaRecord,
} from '@platformatic/kafka';
import { fetchApiFor, fetchCommitted, type FetchResponse } from './fetch.ts';
import { committedRecords } from './txn.ts';

/**
 * A read_committed reader of one topic without a consumer group: plain Fetch requests from chosen
 * offsets (sent by fetch.ts, past the client's own aborted-transaction filter, which hides committed
 * records), aborted transactions filtered by `committedRecords` (txn.ts, the Java client's algorithm).
 * Used for the sink's checkpoint, `tag-connector tail --from kafka` and the tests.
 */

export interface ReadRecord {
  topic: string;
  partition: number;
  offset: bigint;
  key: string | null;
  value: string | null;
  headers: Record<string, string>;
  record: KafkaRecord;
}

const OFFSET_OUT_OF_RANGE = 1;
/** Attempts at one Fetch (the client's own default: 3 retries, 1 s apart), metadata refreshed between. */
const FETCH_ATTEMPTS = 4;
const FETCH_RETRY_MS = 1000;

export class CommittedReader {
  readonly topic: string;
  private readonly consumer: Consumer<Buffer, Buffer, Buffer, Buffer>;
  private meta?: ClusterTopicMetadata;
  private fetchApi?: Awaited<ReturnType<typeof fetchApiFor>>;
  /** Next offset to fetch per partition. */
  readonly next = new Map<number, bigint>();

  constructor(base: BaseOptions, topic: string) {
    this.topic = topic;
    this.consumer = new Consumer<Buffer, Buffer, Buffer, Buffer>({
      ...base,
      groupId: `${base.clientId}-reader`,
      isolationLevel: FetchIsolationLevels.READ_COMMITTED,
    });
  }

  /** Looks the topic up; false when it does not exist. Starts at the beginning or at the end. */
  async init(from: 'beginning' | 'end'): Promise<boolean> {
    let metadata;
    try {
      metadata = await this.consumer.metadata({ topics: [this.topic], forceUpdate: true });
    } catch (err) {
      if (
        /UNKNOWN_TOPIC|does not host this topic/i.test(
          String((err as { errors?: Error[] }).errors?.map((e) => e.message) ?? err),
        )
      )
        return false;
      throw err;
    }
    const t = metadata.topics.get(this.topic);
    if (!t) return false;
    this.meta = t;
    const ends = from === 'end' ? await this.lastStableOffsets() : undefined;
    for (let p = 0; p < t.partitionsCount; p++) this.next.set(p, ends?.[p] ?? 0n);
    return true;
  }

  get partitions(): number {
    return this.meta?.partitionsCount ?? 0;
  }

  /** Per partition, the offset below which every transaction is decided (read_committed end). */
  async lastStableOffsets(): Promise<bigint[]> {
    const offsets = await this.consumer.listOffsets({
      topics: [this.topic],
      isolationLevel: FetchIsolationLevels.READ_COMMITTED,
    });
    return offsets.get(this.topic) ?? [];
  }

  /** One fetch round over every partition; returns the committed records it got (maybe none). */
  async poll(maxWaitTime = 500): Promise<ReadRecord[]> {
    const t = this.meta;
    if (!t) throw new Error(`CommittedReader.init() first (${this.topic})`);
    const byLeader = new Map<number, number[]>();
    for (let p = 0; p < t.partitionsCount; p++) {
      const leader = t.partitions[p]!.leader;
      byLeader.set(leader, [...(byLeader.get(leader) ?? []), p]);
    }
    const out: ReadRecord[] = [];
    for (const [node, partitions] of byLeader) {
      const response = await this.fetch(node, partitions, maxWaitTime);
      for (const p of response.responses.flatMap((r) => r.partitions)) {
        if (p.errorCode === OFFSET_OUT_OF_RANGE) {
          this.next.set(p.partitionIndex, p.logStartOffset);
          continue;
        }
        const batches = p.records ?? [];
        if (batches.length === 0) continue;
        const from = this.next.get(p.partitionIndex)!;
        for (const { offset, record } of committedRecords(batches, p.abortedTransactions)) {
          if (offset < from) continue;
          out.push({
            topic: this.topic,
            partition: p.partitionIndex,
            offset,
            key: record.key ? record.key.toString() : null,
            value: record.value ? record.value.toString() : null,
            headers: Object.fromEntries(
              record.headers.map(([k, v]) => [k?.toString() ?? '', v?.toString() ?? '']),
            ),
            record,
          });
        }
        const last = batches[batches.length - 1]!;
        const end = last.firstOffset + BigInt(last.lastOffsetDelta) + 1n;
        if (end > from) this.next.set(p.partitionIndex, end);
      }
    }
    return out;
  }

  /** One Fetch of `partitions` from their leader `node`, retried (network errors, a moved leader). */
  private async fetch(node: number, partitions: number[], maxWaitTime: number): Promise<FetchResponse> {
    for (let attempt = 1; ; attempt++) {
      try {
        this.fetchApi ??= await fetchApiFor(this.consumer);
        const t = this.meta!;
        // after a retry's metadata refresh, where the (first) partition's leader is now
        const leader = attempt === 1 ? node : t.partitions[partitions[0]!]!.leader;
        return await fetchCommitted(
          this.consumer,
          this.fetchApi,
          leader,
          [
            {
              topicId: t.id,
              partitions: partitions.map((partition) => ({
                partition,
                fetchOffset: this.next.get(partition)!,
                currentLeaderEpoch: -1,
                lastFetchedEpoch: -1,
                partitionMaxBytes: 4 << 20,
              })),
            },
          ],
          { maxWaitTime, maxBytes: 16 << 20 },
        );
      } catch (err) {
        if (attempt >= FETCH_ATTEMPTS) throw err;
        await new Promise((r) => setTimeout(r, FETCH_RETRY_MS));
        const fresh = await this.consumer
          .metadata({ topics: [this.topic], forceUpdate: true })
          .catch(() => undefined);
        this.meta = fresh?.topics.get(this.topic) ?? this.meta;
      }
    }
  }

  /** Reads from where it stands up to the current last stable offsets. */
  async readToEnd(onRecords: (records: ReadRecord[]) => void): Promise<void> {
    const ends = await this.lastStableOffsets();
    let idle = 0;
    for (;;) {
      const behind = [...this.next].filter(([p, off]) => off < (ends[p] ?? 0n));
      if (behind.length === 0) return;
      const got = await this.poll(100);
      if (got.length) onRecords(got);
      // a fetch may return only control batches (markers): progress is the offset, not the records
      const progressed = behind.some(([p, off]) => this.next.get(p)! > off);
      if (!progressed && ++idle > 50) {
        throw new Error(`no progress reading ${this.topic} up to its last stable offset`);
      }
      if (progressed) idle = 0;
    }
  }

  async close(): Promise<void> {
    await this.consumer.close(true).catch(() => undefined);
  }
}
