import { Admin, Producer, ProduceAcks, type BaseOptions } from '@platformatic/kafka';
import { letterFields, type DeadLetter, type DeadLetterTarget } from './route.ts';

/**
 * Above this the event itself is left out of the letter (headers only, `truncated: true`): the
 * letter of an event too big for its topic would be too big for the dead-letter topic as well.
 */
const MAX_VALUE_BYTES = 512 * 1024;

/** Dead letters to a Kafka topic: key = the event's partition key, value = the event, headers = why. */
export class KafkaDeadLetters implements DeadLetterTarget {
  readonly name: string;
  private readonly topic: string;
  private readonly base: BaseOptions;
  private producer?: Producer<Buffer, Buffer, Buffer, Buffer>;

  constructor(topic: string, base: BaseOptions) {
    this.topic = topic;
    this.base = base;
    this.name = `kafka:${topic}`;
  }

  async open(): Promise<void> {
    const admin = new Admin({ ...this.base, clientId: `${this.base.clientId}-dead-letters-admin` });
    try {
      const existing = new Set(await admin.listTopics());
      if (!existing.has(this.topic))
        await admin
          .createTopics({ topics: [this.topic], partitions: 1, replicas: -1 })
          .catch((err: Error) => {
            if (!/already exists/i.test(err.message)) throw err;
          });
    } finally {
      await admin.close().catch(() => undefined);
    }
    this.producer = new Producer({
      ...this.base,
      clientId: `${this.base.clientId}-dead-letters`,
      idempotent: true,
      acks: ProduceAcks.ALL,
      producerId: -1n,
      producerEpoch: -1,
    });
  }

  async send(letter: DeadLetter): Promise<void> {
    if (!this.producer) await this.open();
    const headers = new Map<Buffer, Buffer>();
    for (const [k, v] of Object.entries(letterFields(letter))) headers.set(Buffer.from(k), Buffer.from(v));
    let value: Buffer | undefined = letter.json === undefined ? undefined : Buffer.from(letter.json);
    if (value && value.length > MAX_VALUE_BYTES) {
      value = undefined;
      headers.set(Buffer.from('truncated'), Buffer.from('true'));
    }
    await this.producer!.send({
      messages: [
        {
          topic: this.topic,
          key: Buffer.from(letter.partitionkey),
          ...(value ? { value } : {}),
          headers,
        },
      ],
    });
  }

  async close(): Promise<void> {
    await this.producer?.close(true).catch(() => undefined);
    this.producer = undefined;
  }
}
