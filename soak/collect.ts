import { PubSub, v1 } from '@google-cloud/pubsub';
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { decodeMessage } from '../src/sinks/encode.ts';
import { CommittedReader } from '../src/sinks/kafka/index.ts';

/** The ids in the file sink's NDJSON, in file order (whole lines only). */
export async function fileIds(path: string): Promise<string[]> {
  const out: string[] = [];
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  try {
    for await (const line of lines) {
      if (!line) continue;
      try {
        out.push((JSON.parse(line) as { id: string }).id);
      } catch {
        out.push(`torn:${line.slice(0, 40)}`);
      }
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  return out;
}

/** What the Kafka reader got: per partition, the ids in offset order; whether it read to the end. */
export interface KafkaReading {
  partitions: string[][];
  /** Every partition read up to its last stable offset (taken after the drain): a missing id is lost. */
  complete: boolean;
  records: number;
  seconds: number;
  /** Per partition: where the reader stopped / the last stable offset it read to. */
  offsets: string[];
}

/**
 * Reads a topic read_committed from the beginning, one id list per partition, up to the last stable
 * offsets as they stand when it starts (the caller drained first: the slot confirmed past the end, so
 * every committed transaction is below them), or until `timeoutMs` passed. A reading that ran out of
 * time says so (`complete` false): its missing ids were not read, which proves nothing about loss.
 * `progress` is told every ~10 s.
 */
export async function kafkaIds(
  brokers: string,
  topic: string,
  { timeoutMs, progress }: { timeoutMs: number; progress?: (msg: string) => void },
): Promise<KafkaReading> {
  const reader = new CommittedReader({ clientId: 'tagc-soak-reader', bootstrapBrokers: [brokers] }, topic);
  const parts: string[][] = [];
  const started = Date.now();
  let records = 0;
  let complete = false;
  let ends: bigint[] = [];
  try {
    while (!(await reader.init('beginning'))) {
      if (Date.now() - started > timeoutMs) throw new Error(`topic ${topic} never appeared`);
      await new Promise((r) => setTimeout(r, 500));
    }
    ends = await reader.lastStableOffsets();
    const behind = () => [...reader.next].filter(([p, off]) => off < (ends[p] ?? 0n));
    let told = Date.now();
    while (Date.now() - started < timeoutMs) {
      if (behind().length === 0) {
        complete = true;
        break;
      }
      for (const r of await reader.poll(500)) {
        (parts[r.partition] ??= []).push(decodeMessage(r.headers, r.value ?? '').id);
        records++;
      }
      if (progress && Date.now() - told > 10_000) {
        told = Date.now();
        const at = [...reader.next].map(([p, off]) => `p${p} ${off}/${ends[p] ?? 0n}`).join(', ');
        progress(`kafka reader: ${records} records in ${Math.round((told - started) / 1000)} s (${at})`);
      }
    }
  } finally {
    await reader.close();
  }
  return {
    partitions: parts.filter(Boolean),
    complete,
    records,
    seconds: Math.round((Date.now() - started) / 1000),
    offsets: [...reader.next].map(([p, off]) => `p${p} ${off}/${ends[p] ?? 0n}`),
  };
}

/**
 * A Pub/Sub subscription made before the first publish, read by synchronous Pulls (keeping only each
 * delivery's ce_id). Not a streaming pull: pstest hands a streaming pull one message per stream per
 * 10 ms tick (an unbuffered channel and a non-blocking send, after a scan of the whole backlog), about
 * 40 a second on a loaded machine, and it drops a message nobody took within 10 minutes of its publish
 * (its retentionDuration), so a lagging reader also makes messages vanish. A Pull returns up to 1,000
 * at once; a few loops pull and acknowledge side by side from the first publish on.
 */
export class PubSubIds {
  readonly ids: string[] = [];
  /** Pull calls that failed (retried after a pause; reported, never fatal). */
  pullErrors = 0;
  /** When the last pull brought messages (0: never). */
  lastDeliveryAt = 0;
  private readonly client: PubSub;
  private subscriber?: InstanceType<typeof v1.SubscriberClient>;
  private subscription = '';
  private loops: Promise<void>[] = [];
  private closing = false;

  constructor(projectId: string) {
    this.client = new PubSub({ projectId });
  }

  async subscribe(topic: string, { loops = 3, maxMessages = 1000 } = {}): Promise<this> {
    const [t] = await this.client.createTopic(topic);
    // a long ack deadline: a pull answered on a loaded machine must not come back before its ack
    const [sub] = await t.createSubscription(`${topic}-soak`, { ackDeadlineSeconds: 120 });
    this.subscription = sub.name;
    this.subscriber = new v1.SubscriberClient(
      // the emulator's address and insecure credentials, as the PubSub client worked them out
      (await this.client.getClientConfig()) as ConstructorParameters<typeof v1.SubscriberClient>[0],
    );
    for (let i = 0; i < loops; i++) this.loops.push(this.pullLoop(this.subscriber, maxMessages));
    return this;
  }

  private async pullLoop(s: InstanceType<typeof v1.SubscriberClient>, maxMessages: number): Promise<void> {
    const subscription = this.subscription;
    while (!this.closing) {
      try {
        const [res] = await s.pull({ subscription, maxMessages }, { timeout: 60_000 });
        const got = res.receivedMessages ?? [];
        if (got.length === 0) continue; // pstest waited 500 ms for one
        this.lastDeliveryAt = Date.now();
        for (const m of got) this.ids.push(m.message?.attributes?.ce_id ?? `no-id:${m.message?.messageId}`);
        await s.acknowledge({ subscription, ackIds: got.map((m) => m.ackId!) }, { timeout: 60_000 });
      } catch {
        if (this.closing) return;
        this.pullErrors++;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.loops);
    await this.subscriber?.close().catch(() => undefined);
    await this.client.close().catch(() => undefined);
  }
}
