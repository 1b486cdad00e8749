import { PubSub, type Subscription } from '@google-cloud/pubsub';
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

/**
 * Reads a topic read_committed from the beginning, one id list per partition, until every id in
 * `want` arrived and nothing new came for `quietMs`, or `timeoutMs` passed.
 */
export async function kafkaIds(
  brokers: string,
  topic: string,
  want: ReadonlySet<string>,
  { quietMs = 3000, timeoutMs = 300_000 } = {},
): Promise<string[][]> {
  const reader = new CommittedReader({ clientId: 'tagc-soak-reader', bootstrapBrokers: [brokers] }, topic);
  const parts: string[][] = [];
  const seen = new Set<string>();
  try {
    const started = Date.now();
    while (!(await reader.init('beginning'))) {
      if (Date.now() - started > timeoutMs) throw new Error(`topic ${topic} never appeared`);
      await new Promise((r) => setTimeout(r, 500));
    }
    let last = Date.now();
    let missing = want.size;
    while (Date.now() - started < timeoutMs) {
      const got = await reader.poll(500);
      if (got.length) last = Date.now();
      for (const r of got) {
        const id = decodeMessage(r.headers, r.value ?? '').id;
        (parts[r.partition] ??= []).push(id);
        if (want.has(id) && !seen.has(id)) {
          seen.add(id);
          missing--;
        }
      }
      if (missing === 0 && Date.now() - last > quietMs) break;
    }
  } finally {
    await reader.close();
  }
  return parts.filter(Boolean);
}

/** A Pub/Sub subscription made before the first publish, keeping only each delivery's ce_id. */
export class PubSubIds {
  readonly ids: string[] = [];
  private sub?: Subscription;
  private readonly client: PubSub;

  constructor(projectId: string) {
    this.client = new PubSub({ projectId });
  }

  async subscribe(topic: string): Promise<this> {
    const [t] = await this.client.createTopic(topic);
    const [sub] = await t.createSubscription(`${topic}-soak`);
    sub.setOptions({ flowControl: { maxMessages: 5000, allowExcessMessages: true } });
    sub.on('message', (m) => {
      this.ids.push(m.attributes.ce_id ?? `no-id:${m.id}`);
      m.ack();
    });
    sub.on('error', () => undefined);
    this.sub = sub;
    return this;
  }

  async close(): Promise<void> {
    await this.sub?.close().catch(() => undefined);
    await this.client.close().catch(() => undefined);
  }
}
