import { PubSub, type Topic } from '@google-cloud/pubsub';
import type { Logger } from '../log.ts';
import { asEvents, PackedBatch, type SinkBatch } from './batch.ts';
import type { PubSubSinkConfig, SinkContext } from './context.ts';
import { encodeEvent, STRUCTURED_CONTENT_TYPE, type Envelope } from './encode.ts';
import { ATTRS, scanAttributes } from './kafka/index.ts';
import { orderingKeyFor } from './ordering-key.ts';
import { configRoutes, DEFAULT_TOPIC, routedTopics, topicRouter } from './route.ts';
import type { OutboundEvent, Sink } from './sink.ts';

/**
 * The Google Pub/Sub sink. Ordering key = the event's partition key (`messageOrdering: true`), so one
 * entity's events are delivered in commit order; or, with `orderingBuckets`, one of that many keys
 * chosen by the partition key (ordering-key.ts: many messages per publish call). Attributes always
 * carry the CloudEvents context (`ce_id`, `ce_type`, `ce_lsn`, ...; binary mode), whatever the envelope
 * of the body.
 *
 * Pub/Sub has no transactions: delivery is at-least-once. `write` resolves once every publish of the
 * batch resolved; the runner then saves the checkpoint in Postgres. A crash between a publish and the
 * checkpoint (or a retried batch whose first attempt partly succeeded) publishes some events again,
 * with the same `ce_id` = `<commitLsn>/<seq>`: subscribers dedupe by it. After a failed publish the
 * ordering key is paused by the client; we resume it (`resumePublishing`) before rethrowing so the
 * runner's retry can publish it again.
 *
 * `PUBSUB_EMULATOR_HOST` (pstest, the gcloud emulator) is honoured by the client library.
 */

export interface PubSubSinkOptions {
  projectId: string;
  /** Service-account key file; default: Application Default Credentials. */
  keyFilename?: string;
  topic: string;
  routes: Readonly<Record<string, string>>;
  envelope: Envelope;
  database: string;
  version: string;
  /** Create missing topics at open [true]. */
  createTopics?: boolean;
  /** Ordering key = one of this many buckets by partition key; 0: the partition key [0] (ordering-key.ts). */
  orderingBuckets?: number;
  /** Per publish RPC timeout (the client retries within it) [20000]. */
  publishTimeoutMs?: number;
  logger?: Logger;
}

/**
 * The publisher settings of the sink's topics (bench/pubsub-alone.ts publishes with the same ones):
 * per-key ordering, batches of up to 1,000 messages or 5 ms.
 */
export function pubsubTopicOptions(publishTimeoutMs = 20_000) {
  return {
    messageOrdering: true,
    batching: { maxMessages: 1000, maxMilliseconds: 5, maxBytes: 8 << 20 },
    gaxOpts: { timeout: publishTimeoutMs },
  };
}

export class PubSubSinkError extends Error {
  readonly code = 'PUBSUB_SINK';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PubSubSinkError';
  }
}

/** The attribute names of ATTRS, as binaryAttributes (envelope.ts) names them. */
const ATTR_NAMES = ATTRS.map((a) => `ce_${a}`);

/** A batch's publishes under way: per message, null once acknowledged or what failed. */
interface Publishing {
  pending: Promise<{ err: Error; topic: Topic; orderingKey: string } | null>[];
  size: number;
}

export class PubSubSink implements Sink {
  readonly name = 'pubsub';
  readonly ownsCheckpoint = false;
  /** Pub/Sub's limit on a message (10 MB, attributes included), with room left for the attributes. */
  readonly maxEventBytes = 10_000_000 - 64 * 1024;
  private o: PubSubSinkOptions;
  private readonly client: PubSub;
  private readonly topics = new Map<string, Topic>();
  private route: (e: { type: string; table: string }) => string;
  private chain: Promise<unknown> = Promise.resolve();
  private readonly attrOffsets = new Int32Array(ATTRS.length * 2);
  /** Batches published whose publishes have not all settled. */
  private underway = 0;

  constructor(options: PubSubSinkOptions) {
    this.o = options;
    // Against an emulator nothing may leave the machine: without this, google-auth's metadata probe
    // looks up the GCE metadata server by DNS when the emulator is unreachable (gcp-metadata reads
    // this variable; an operator's own setting wins).
    if (process.env.PUBSUB_EMULATOR_HOST) process.env.METADATA_SERVER_DETECTION ??= 'none';
    this.client = new PubSub({
      projectId: options.projectId,
      ...(options.keyFilename ? { keyFilename: options.keyFilename } : {}),
    });
    this.route = topicRouter(options.routes, options.topic);
  }

  async setRoutes(routes: Readonly<Record<string, string>>): Promise<void> {
    this.o = { ...this.o, routes };
    if (this.o.createTopics !== false) await this.ensureTopics();
    this.route = topicRouter(routes, this.o.topic);
  }

  topicOf(e: OutboundEvent): string {
    return this.route(e);
  }

  /** The service refuses a message as too large (INVALID_ARGUMENT): no retry changes that. */
  rejection(err: Error): string | undefined {
    const e = err as Error & { cause?: { code?: number } };
    return e.cause?.code === 3 && /too large|exceeds|size/i.test(e.message)
      ? 'rejected by Pub/Sub: message too large'
      : undefined;
  }

  private topic(name: string): Topic {
    let t = this.topics.get(name);
    if (!t) {
      t = this.client.topic(name, pubsubTopicOptions(this.o.publishTimeoutMs));
      this.topics.set(name, t);
    }
    return t;
  }

  async open(): Promise<null> {
    if (this.o.createTopics !== false) await this.ensureTopics();
    return null;
  }

  /** Creates missing topics (needs pubsub.topics.create; without it they must exist already). */
  async ensureTopics(): Promise<void> {
    // 20 s, not the client's default of 60 s of retries, which left an unreachable service unnamed for
    // a minute at start-up; not the publish timeout either: after an outage gRPC's reconnect backoff
    // alone can take seconds.
    const gaxOpts = { timeout: TOPIC_CHECK_TIMEOUT_MS };
    for (const name of routedTopics(this.o.routes, this.o.topic)) {
      try {
        const exists = await this.client
          .topic(name)
          .getMetadata(gaxOpts)
          .then(
            () => true,
            (err: { code?: number }) => {
              if (err.code === 5 /* NOT_FOUND */) return false;
              throw err;
            },
          );
        if (!exists)
          await this.client.createTopic(name, gaxOpts).catch((err: { code?: number }) => {
            if (err.code !== 6 /* ALREADY_EXISTS */) throw err;
          });
      } catch (err) {
        throw new PubSubSinkError(
          `pubsub: cannot check/create topic ${name} in project ${this.o.projectId}: ${firstError(err)}`,
          { cause: err },
        );
      }
    }
  }

  /**
   * Publishes the runner's next batch at once, while the current write is still waiting for its
   * acknowledgements (the runner prepares the next full batch during a write): two batches in flight
   * instead of one, so the emulator's or the service's round trip is not paid once per batch. Order is
   * kept: the client queues each ordering key's messages in call order, sends one batch per key at a
   * time, and after a failed publish rejects the key's later messages until it is resumed; `write`
   * then reports the failure and the runner's retry publishes the batch again, in order.
   */
  prepare(batch: PackedBatch): Publishing {
    return this.publishBatch(batch);
  }

  write(batch: SinkBatch, prepared?: unknown): Promise<void> {
    // Published now, in call order (a prepared batch already is): the client keeps each key's order
    // by the order of publishMessage calls. One message per event, built from an object: the client
    // takes them one by one anyway.
    const publishing = (prepared as Publishing | undefined) ?? this.publishBatch(batch);
    const run = this.chain.then(() => this.settle(publishing));
    this.chain = run.catch(() => undefined);
    return run;
  }

  /**
   * A batch's publishes are all queued: flush the topics at once when none of our earlier batches is
   * still under way, else leave it to the client. Its OrderedQueue sends a key's next batch by itself
   * when the one in flight returns, but `flush()` publishes a key's next batch even while one is in
   * flight, two requests of one key at once, which pstest then stored out of order (seen in
   * test/integration/pubsub-sink.test.ts).
   */
  private started(pending: Publishing['pending'], used: Set<Topic>, size: number): Publishing {
    if (this.underway === 0) for (const t of used) void t.flush().catch(() => undefined);
    this.underway++;
    void Promise.all(pending).then(() => this.underway--);
    return { pending, size };
  }

  private publishBatch(batch: SinkBatch): Publishing {
    return batch instanceof PackedBatch && this.o.envelope === 'structured'
      ? this.publishPacked(batch)
      : this.publish(asEvents(batch));
  }

  /**
   * Structured mode straight from the packed bytes: the body is a copy of the event's UTF-8 bytes in
   * its block, the `ce_*` attributes are read from the head of those bytes (the Kafka sink's
   * scanAttributes), with no event object, no JSON.parse of the whole event (it was most of this
   * sink's CPU per change on wide rows) and no second UTF-8 encoding. An event whose head the scan
   * does not recognise takes the object path.
   */
  private publishPacked(batch: PackedBatch): Publishing {
    const used = new Set<Topic>();
    const pending: Publishing['pending'] = [];
    const at = this.attrOffsets;
    const buckets = this.o.orderingBuckets ?? 0;
    const routeOf = { type: '', table: '' };
    for (let r = 0; r < batch.blocks.length; r++) {
      const block = batch.blocks[r]!;
      const buf = block.buf;
      for (let i = batch.froms[r]!; i < batch.tos[r]!; i++) {
        const from = block.start(i);
        const to = block.ends[i]!;
        let attributes: Record<string, string>;
        let data: Buffer;
        if (scanAttributes(buf, at, from, to)) {
          attributes = { 'content-type': STRUCTURED_CONTENT_TYPE };
          for (let a = 0; a < ATTR_NAMES.length; a++)
            attributes[ATTR_NAMES[a]!] = buf.toString('utf8', at[2 * a]!, at[2 * a + 1]!);
          data = Buffer.copyBytesFrom(buf, from, to - from);
        } else {
          const { headers, value } = encodeEvent(
            block.event(i),
            'structured',
            this.o.database,
            this.o.version,
          );
          attributes = headers;
          data = Buffer.from(value);
        }
        routeOf.type = block.types[i]!;
        routeOf.table = block.tables[i]!;
        const topic = this.topic(this.route(routeOf));
        used.add(topic);
        const orderingKey = orderingKeyFor(block.keys[i]!, buckets);
        pending.push(
          topic.publishMessage({ data, attributes, orderingKey }).then(
            () => null,
            (err: Error) => ({ err, topic, orderingKey }),
          ),
        );
      }
    }
    return this.started(pending, used, batch.length);
  }

  private publish(batch: readonly OutboundEvent[]): Publishing {
    const used = new Set<Topic>();
    const pending = batch.map((e) => {
      const { headers, value } = encodeEvent(e, this.o.envelope, this.o.database, this.o.version);
      const topic = this.topic(this.route(e));
      used.add(topic);
      const orderingKey = orderingKeyFor(e.partitionkey, this.o.orderingBuckets ?? 0);
      return topic.publishMessage({ data: Buffer.from(value), attributes: headers, orderingKey }).then(
        () => null,
        (err: Error) => ({ err, topic, orderingKey }),
      );
    });
    return this.started(pending, used, batch.length);
  }

  private async settle(publishing: Publishing): Promise<void> {
    if (publishing.size === 0) return;
    const failures = (await Promise.all(publishing.pending)).filter((f) => f !== null);
    if (failures.length === 0) return;
    // The client pauses a key after a failed publish (later messages of the key fail too): resume
    // every failed key so the runner's retry of this batch can publish it again.
    const resumed = new Set<string>();
    for (const f of failures) {
      const k = `${f.topic.name}\u0000${f.orderingKey}`;
      if (resumed.has(k)) continue;
      resumed.add(k);
      f.topic.resumePublishing(f.orderingKey);
    }
    const first = failures[0]!.err;
    throw new PubSubSinkError(
      `pubsub: ${failures.length} of ${publishing.size} publishes failed: ${first.message}`,
      { cause: first },
    );
  }

  async close(): Promise<void> {
    await this.chain;
    for (const t of this.topics.values()) await t.flush().catch(() => undefined);
    await this.client.close().catch(() => undefined);
  }
}

export async function createPubSubSink(ctx: SinkContext<PubSubSinkConfig>): Promise<Sink> {
  const c = ctx.config;
  const projectId =
    c.projectId ??
    process.env.GOOGLE_CLOUD_PROJECT ??
    (process.env.PUBSUB_EMULATOR_HOST ? 'tag-connector' : undefined);
  if (!projectId) {
    throw new PubSubSinkError('--sink pubsub needs --project-id (or GOOGLE_CLOUD_PROJECT)');
  }
  return new PubSubSink({
    projectId,
    keyFilename: c.serviceAccount,
    topic: c.topic ?? DEFAULT_TOPIC,
    routes: configRoutes(c),
    envelope: c.envelope,
    orderingBuckets: c.pubsubOrderingBuckets,
    database: ctx.database,
    version: ctx.version,
    logger: ctx.logger,
  });
}

const TOPIC_CHECK_TIMEOUT_MS = 20_000;

/** A gax error's own message, without the list of every earlier attempt's identical error it appends. */
function firstError(err: unknown): string {
  return (err as Error).message.split(' : Previous errors')[0]!.trim();
}
