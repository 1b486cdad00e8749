import { randomUUID } from 'node:crypto';
import { PubSub, type Subscription } from '@google-cloud/pubsub';

export interface ReceivedMessage {
  id: string;
  orderingKey: string;
  attributes: Record<string, string>;
  data: string;
}

/** A subscription on a topic (create it before publishing) and what it received so far. */
export class Collector {
  readonly received: ReceivedMessage[] = [];
  private sub?: Subscription;
  private readonly client: PubSub;
  private last = Date.now();

  constructor(projectId: string) {
    this.client = new PubSub({ projectId });
  }

  async subscribe(topic: string, { ordering = true } = {}): Promise<this> {
    const [sub] = await this.client
      .topic(topic)
      .createSubscription(`sub-${randomUUID().slice(0, 12)}`, { enableMessageOrdering: ordering });
    sub.setOptions({ flowControl: { maxMessages: 5000, allowExcessMessages: true } });
    sub.on('message', (m) => {
      this.last = Date.now();
      this.received.push({
        id: m.id,
        orderingKey: m.orderingKey ?? '',
        attributes: { ...m.attributes },
        data: m.data.toString(),
      });
      m.ack();
    });
    sub.on('error', () => undefined);
    this.sub = sub;
    return this;
  }

  /** Waits until `count` messages arrived or none came for `quietMs`. */
  async waitFor(count: number, { quietMs = 3000, timeoutMs = 60000 } = {}): Promise<ReceivedMessage[]> {
    const started = Date.now();
    this.last = Date.now();
    while (
      this.received.length < count &&
      Date.now() - this.last < quietMs &&
      Date.now() - started < timeoutMs
    ) {
      await new Promise((r) => setTimeout(r, 100));
    }
    return this.received;
  }

  async close(): Promise<void> {
    await this.sub?.close().catch(() => undefined);
    await this.client.close().catch(() => undefined);
  }
}
