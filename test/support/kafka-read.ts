import { randomUUID } from 'node:crypto';
import { Consumer, FetchIsolationLevels, stringDeserializers } from '@platformatic/kafka';

export interface ReadMessage {
  topic: string;
  partition: number;
  offset: bigint;
  key: string;
  value: string;
  /** The value's bytes (binary values: Avro); empty for a null value. */
  valueBytes: Buffer;
  headers: Record<string, string>;
}

/**
 * Reads a topic from the beginning with a fresh consumer group until `count` messages arrived or
 * `quietMs` passed without a new one (then returns what it has). read_committed unless told otherwise.
 */
export async function readTopic(
  brokers: string,
  topic: string,
  {
    count = Infinity,
    quietMs = 3000,
    timeoutMs = 60000,
    isolation = 'read_committed' as 'read_committed' | 'read_uncommitted',
  } = {},
): Promise<ReadMessage[]> {
  const consumer = new Consumer<string, Buffer | undefined, string, string>({
    clientId: 'tagc-test-reader',
    groupId: `tagc-test-${randomUUID()}`,
    bootstrapBrokers: [brokers],
    deserializers: { ...stringDeserializers, value: (b?: Buffer) => b },
    isolationLevel:
      isolation === 'read_committed'
        ? FetchIsolationLevels.READ_COMMITTED
        : FetchIsolationLevels.READ_UNCOMMITTED,
    maxWaitTime: 200,
    autocommit: false,
  });
  const out: ReadMessage[] = [];
  try {
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest' });
    const started = Date.now();
    let last = Date.now();
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        if (out.length >= count || Date.now() - last > quietMs || Date.now() - started > timeoutMs) {
          clearInterval(timer);
          resolve();
        }
      }, 100);
      stream.on('data', (m) => {
        last = Date.now();
        out.push({
          topic: m.topic,
          partition: m.partition,
          offset: m.offset,
          key: m.key ?? '',
          value: m.value?.toString() ?? '',
          valueBytes: m.value ?? Buffer.alloc(0),
          headers: Object.fromEntries([...m.headers].map(([k, v]) => [String(k), String(v)])),
        });
      });
      stream.on('error', (err) => {
        clearInterval(timer);
        reject(err);
      });
    });
    await stream.close();
  } finally {
    await consumer.close(true).catch(() => undefined);
  }
  return out;
}

/**
 * Reads a topic from the beginning, read_committed, with our own Fetch loop (CommittedReader), until
 * `count` records or `quietMs` without one.
 */
export async function readCommitted(
  brokers: string,
  topic: string,
  { count = Infinity, quietMs = 3000, timeoutMs = 60000 } = {},
): Promise<ReadMessage[]> {
  const { CommittedReader } = await import('../../src/sinks/kafka/index.ts');
  const reader = new CommittedReader({ clientId: 'tagc-test-reader', bootstrapBrokers: [brokers] }, topic);
  const out: ReadMessage[] = [];
  try {
    const started = Date.now();
    while (!(await reader.init('beginning'))) {
      if (Date.now() - started > timeoutMs) throw new Error(`topic ${topic} never appeared`);
      await new Promise((r) => setTimeout(r, 200));
    }
    let last = Date.now();
    while (out.length < count && Date.now() - last < quietMs && Date.now() - started < timeoutMs) {
      const before = [...reader.next.values()].join();
      const got = await reader.poll(200);
      // Progress is the offsets, not the records: a fetch through aborted transactions or markers
      // returns none, and stopping there would leave the partitions behind them unread.
      if (got.length || [...reader.next.values()].join() !== before) last = Date.now();
      for (const r of got) {
        out.push({
          topic: r.topic,
          partition: r.partition,
          offset: r.offset,
          key: r.key ?? '',
          value: r.value ?? '',
          valueBytes: Buffer.from(r.value ?? ''),
          headers: r.headers,
        });
      }
    }
  } finally {
    await reader.close();
  }
  return out;
}
