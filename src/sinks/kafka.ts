import { readFileSync } from 'node:fs';
import { isMainThread, parentPort, Worker, workerData, type Transferable } from 'node:worker_threads';
import {
  Admin,
  Producer,
  ProduceAcks,
  type BaseOptions,
  type ClusterMetadata,
  type CompressionAlgorithmValue,
  type MessageRecord,
  type MessageToProduce,
  type ProducerOptions,
  type SASLOptions,
  createRecord,
  Writer,
} from '@platformatic/kafka';
import type { Config } from '../config/index.ts';
import type { Logger } from '../log.ts';
import { comparePosition, formatLsn, formatPosition, parseLsn, type Position } from '../util/lsn.ts';
import { binaryAttributes, type CloudEvent } from '../events/envelope.ts';
import type { SinkContext } from './context.ts';
import { encodeEvent, STRUCTURED_CONTENT_TYPE, type Envelope } from './encode.ts';
import { CommittedReader } from './kafka-reader.ts';
import { produceTarget, produceVersion, Sequences, type PartitionBatch } from './kafka-produce.ts';
import {
  partitionOf,
  recordBatch,
  recordBodySize,
  varIntSize,
  writeRecord,
  writeVarInt,
} from './kafka-records.ts';
import { DEFAULT_TOPIC, routedTopics, topicRouter } from './route.ts';
import type { OutboundEvent, Sink } from './sink.ts';

/**
 * The Kafka sink (@platformatic/kafka). acks=all, idempotent; message key = the event's partition key,
 * so one entity's events stay in one partition, in commit order.
 *
 * Exactly-once mode (default): each `write(batch)` is one Kafka transaction holding the events and this
 * sink's checkpoint, a record keyed by the slot name in a compacted checkpoint topic. The transactional
 * id is derived from the slot, so a restarted daemon fences its predecessor and the coordinator aborts
 * whatever that one left open. `open()` reads the checkpoint back (read_committed), the runner skips
 * events at or below it: a read_committed consumer sees every change once, across crashes, with no
 * other store. After a failed write (broker gone, commit outcome unknown) the producer is dropped and
 * the checkpoint read again before the retry, so a commit that did succeed is never repeated.
 *
 * Non-transactional mode (`--kafka-exactly-once false`): idempotent sends only, at-least-once, the
 * runner keeps the checkpoint in the state store.
 *
 * Throughput (bench: catch-up, "daemon → kafka sink" against "Kafka client alone"): the producer side
 * (KafkaWriter) runs in a thread of its own, the main thread only routes events and hands their JSON
 * over; a transaction's Produce requests go out back to back (each at most MAX_REQUEST_BYTES), LZ4
 * compressed; the structured envelope's headers are read from the head of the event's JSON (no parse)
 * and handed to the client as one encoded block (HEADER_BLOCK); CONCURRENT_TRANSACTIONS is retried
 * after milliseconds, not after the outage back-off.
 */

/** Messages go to the client as Buffers (no serializers). */
type Msg = MessageToProduce<Buffer, Buffer, Buffer, Buffer>;
type KafkaProducer = Producer<Buffer, Buffer, Buffer, Buffer>;
type Transaction = Awaited<ReturnType<KafkaProducer['beginTransaction']>>;

/**
 * Upper bound of one Produce request's messages (approximate bytes). A request holds one record batch
 * per partition, and the broker refuses a batch over its `message.max.bytes` (1 MiB by default): a big
 * batch, all the more one whose events share a key, goes out as several requests.
 */
export const MAX_REQUEST_BYTES = 512 * 1024;

export interface KafkaSinkOptions {
  brokers: string[];
  slot: string;
  topic: string;
  routes: Readonly<Record<string, string>>;
  checkpointTopic: string;
  exactlyOnce: boolean;
  envelope: Envelope;
  partitions: number;
  replicationFactor: number;
  clientId: string;
  database: string;
  version: string;
  /** TLS / SASL and timeouts for every client. */
  connection?: Partial<BaseOptions>;
  logger?: Logger;
  /** Per request timeout, and the transaction timeout [15000]. */
  timeoutMs?: number;
  /** Attempts per request inside the client before a write throws [5]. */
  retries?: number;
  /**
   * Write record batches ourselves (kafka-records.ts) rather than through the client's per-message
   * send [true]; false is kept for comparison (bench) and as a way back.
   */
  ownRecordBatches?: boolean;
  /** Record batch compression [lz4]. */
  compression?: CompressionAlgorithmValue;
  /** Produce from a thread of the sink's own [true]; false: on the caller's. */
  thread?: boolean;
}

export class KafkaSinkError extends Error {
  readonly code = 'KAFKA_SINK';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KafkaSinkError';
  }
}

export interface KafkaCheckpointValue {
  commitLsn: string;
  seq: number;
  id: string;
  slot: string;
  at: string;
}

export function checkpointValue(slot: string, p: Position, now = new Date()): KafkaCheckpointValue {
  return {
    commitLsn: formatLsn(p.commitLsn),
    seq: p.seq,
    id: formatPosition(p),
    slot,
    at: now.toISOString(),
  };
}

export function parseCheckpointValue(value: string): Position {
  const v = JSON.parse(value) as Partial<KafkaCheckpointValue>;
  if (typeof v.commitLsn !== 'string' || typeof v.seq !== 'number') {
    throw new KafkaSinkError(`bad checkpoint record: ${value.slice(0, 200)}`);
  }
  return { commitLsn: parseLsn(v.commitLsn), seq: v.seq };
}

/** The transactional id of a slot's Kafka sink: stable across restarts, one writer per slot. */
export function transactionalIdFor(clientId: string, slot: string): string {
  return `${clientId}.${slot}`;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new KafkaSinkError(`${what} timed out after ${ms} ms`)), ms);
    }),
  ]);
}

function describe(err: unknown): string {
  const e = err as Error & { errors?: Error[]; code?: string };
  const inner = e.errors?.length ? `: ${e.errors.map((x) => x.message).join('; ')}` : '';
  return `${e.code ? `[${e.code}] ` : ''}${e.message}${inner}`;
}

/** The CloudEvents attributes of a structured event's headers, in `binaryAttributes` order. */
const ATTRS = [
  'specversion',
  'id',
  'source',
  'type',
  'time',
  'lsn',
  'commitlsn',
  'xid',
  'partitionkey',
  'subject',
] as const;
const SUBJECT = ATTRS.indexOf('subject');
const PARTITIONKEY = ATTRS.indexOf('partitionkey');
const ATTR_SLOT = new Map<string, number>(ATTRS.map((a, i) => [a, i]));
const DATA = -1;
const OTHER = -2;
/** The order the extractor writes them in (checked first, any order is read). */
const JSON_ORDER = [
  'specversion',
  'id',
  'source',
  'time',
  'datacontenttype',
  'lsn',
  'commitlsn',
  'xid',
  'type',
  'subject',
  'partitionkey',
  'data',
].map((k) => ({ quoted: `"${k}":`, slot: ATTR_SLOT.get(k) ?? (k === 'data' ? DATA : OTHER) }));
const HEADER_NAMES: readonly Buffer[] = ATTRS.map((a) => Buffer.from(`ce_${a}`));
const CONTENT_TYPE = Buffer.from('content-type');
const STRUCTURED_CONTENT_TYPE_BUF = Buffer.from(STRUCTURED_CONTENT_TYPE);
/** The same on the wire (length-prefixed), for encoded header blocks. */
const HEADER_WIRE_NAMES: readonly Buffer[] = HEADER_NAMES.map(wireName);
const CONTENT_TYPE_WIRE = Buffer.concat([wireName(CONTENT_TYPE), wireName(STRUCTURED_CONTENT_TYPE_BUF)]);

/** The keys JSON_ORDER expects, as bytes (with their quotes and colon). */
const JSON_ORDER_BYTES: readonly Uint8Array[] = JSON_ORDER.map((k) => Buffer.from(k.quoted));
const QUOTE = 34;
const BACKSLASH = 92;

/** Offset of the closing quote of a JSON string whose text starts at `i`; -1 at an escape or the end. */
function stringEnd(b: Uint8Array, i: number): number {
  for (let n = b.length; i < n; i++) {
    const c = b[i]!;
    if (c === QUOTE) return i;
    if (c === BACKSLASH) return -1;
  }
  return -1;
}

/**
 * Finds the context attributes at the head of an event's JSON bytes without parsing it:
 * `at[2i]`/`at[2i+1]` are the start and end offsets of attribute ATTRS[i]'s UTF-8 text. The extractor
 * writes every attribute before `data`, as strings (`xid` an integer). Returns false for anything else
 * (an escape before `data`, an attribute after it, no subject...): the caller then parses the event.
 * Bytes, not text: UTF-8 never has a quote, backslash or comma inside a multi-byte character, so the
 * offsets are exact for any text.
 */
export function scanAttributes(json: Uint8Array, at: Int32Array): boolean {
  at.fill(-1);
  if (json[0] !== 123 /* { */) return false;
  let i = 1;
  let expect = 0;
  for (;;) {
    if (json[i] !== QUOTE) return false;
    let slot: number;
    let v: number;
    const known = expect < JSON_ORDER_BYTES.length ? JSON_ORDER_BYTES[expect]! : undefined;
    if (known && startsWithAt(json, known, i)) {
      slot = JSON_ORDER[expect]!.slot;
      v = i + known.length;
      expect++;
    } else {
      const keyEnd = stringEnd(json, i + 1);
      if (keyEnd < 0 || json[keyEnd + 1] !== 58 /* : */) return false;
      const key = Buffer.from(json.buffer, json.byteOffset + i + 1, keyEnd - i - 1).toString('utf8');
      slot = key === 'data' ? DATA : (ATTR_SLOT.get(key) ?? OTHER);
      v = keyEnd + 2;
    }
    if (slot === DATA) break;
    const c = json[v]!;
    let start: number;
    let end: number;
    if (c === QUOTE) {
      start = v + 1;
      end = stringEnd(json, start);
      if (end < 0) return false;
      i = end + 1;
    } else if (c >= 48 && c <= 57) {
      start = v;
      end = v + 1;
      while (json[end]! >= 48 && json[end]! <= 57) end++;
      i = end;
    } else return false;
    if (slot >= 0) {
      at[2 * slot] = start;
      at[2 * slot + 1] = end;
    }
    if (json[i] !== 44 /* , */) return false;
    i++;
  }
  for (let k = 0; k < at.length; k++) if (at[k]! < 0) return false;
  return true;
}

function startsWithAt(b: Uint8Array, prefix: Uint8Array, at: number): boolean {
  if (at + prefix.length > b.length) return false;
  for (let k = 0; k < prefix.length; k++) if (b[at + k] !== prefix[k]) return false;
  return true;
}

/** What the encoder reads of an event. */
export type EncoderEvent = Pick<OutboundEvent, 'json' | 'partitionkey'>;

/** A header name with its length prefix, as it goes on the wire. */
function wireName(name: Buffer): Buffer {
  const out = Buffer.allocUnsafe(varIntSize(name.length) + name.length);
  name.copy(out, writeVarInt(out, name.length, 0));
  return out;
}

/**
 * A record's headers already in wire form: [count][name length][name][value length][value]... The
 * client writes a record's headers with `Writer#appendVarIntMap`, four small Buffers per header, most
 * of its CPU and garbage per record with our eleven headers. A header Map holding only this key
 * carries the encoded block instead (see installHeaderBlock).
 */
const HEADER_BLOCK = Buffer.from('tag-connector/header-block');

let headerBlockState: boolean | undefined;

/**
 * Teaches the client's Writer to append a HEADER_BLOCK entry as is, then checks on a sample record
 * that the bytes are exactly those of the plain headers; if not (another client version), the block
 * stays unused and headers go as Maps.
 */
export function headerBlocks(): boolean {
  if (headerBlockState !== undefined) return headerBlockState;
  headerBlockState = false;
  try {
    const proto = Writer.prototype as unknown as {
      appendVarIntMap(value: Map<unknown, unknown> | null | undefined, entryWriter: unknown): unknown;
      append(b: Buffer): unknown;
    };
    const original = proto.appendVarIntMap;
    proto.appendVarIntMap = function (value, entryWriter) {
      if (value?.size === 1) {
        const [k, v] = value.entries().next().value as [unknown, unknown];
        if (k === HEADER_BLOCK) return this.append(v as Buffer);
      }
      return original.call(this, value, entryWriter);
    };
    const names = [Buffer.from('ce_id'), Buffer.from('content-type'), Buffer.from('x'.repeat(70))];
    const values = [Buffer.from('0/16B3748/0'), Buffer.from('é'.repeat(80)), Buffer.alloc(0)];
    const plain = new Map(names.map((n, i) => [n, values[i]!]));
    const block = Buffer.allocUnsafe(400);
    let off = writeVarInt(block, names.length, 0);
    for (let i = 0; i < names.length; i++) {
      off = writeVarInt(block, names[i]!.length, off);
      off += names[i]!.copy(block, off);
      off = writeVarInt(block, values[i]!.length, off);
      off += values[i]!.copy(block, off);
    }
    const message = { key: Buffer.from('k'), value: Buffer.from('{}'), topic: 't', timestamp: 5n };
    const expected = createRecord({ ...message, headers: plain }, 3, 1n).buffer;
    const got = createRecord(
      { ...message, headers: new Map([[HEADER_BLOCK, block.subarray(0, off)]]) },
      3,
      1n,
    ).buffer;
    headerBlockState = expected.equals(got);
  } catch {
    headerBlockState = false;
  }
  return headerBlockState;
}

/** Bytes of a structured header block whose attributes are at `at` (scanAttributes) with a key of `keyLength`. */
function structuredBlockSize(at: Int32Array, keyLength: number): number {
  const subjectLength = at[2 * SUBJECT + 1]! - at[2 * SUBJECT]!;
  let size = varIntSize(ATTRS.length + (subjectLength > 0 ? 1 : 0)) + CONTENT_TYPE_WIRE.length;
  for (let i = 0; i < ATTRS.length; i++) {
    const n = i === PARTITIONKEY ? keyLength : at[2 * i + 1]! - at[2 * i]!;
    if (i === SUBJECT && n === 0) continue;
    size += HEADER_WIRE_NAMES[i]!.length + varIntSize(n) + n;
  }
  return size;
}

/**
 * An upper bound of structuredBlockSize for any event: the attribute values are disjoint parts of the
 * event's JSON, so the names, the content type and a 5-byte length per header plus the JSON's and the
 * key's own lengths always suffice.
 */
const STRUCTURED_BLOCK_OVERHEAD =
  5 + CONTENT_TYPE_WIRE.length + HEADER_WIRE_NAMES.reduce((sum, name) => sum + name.length + 5, 0);

/**
 * Writes the structured header block of the event whose JSON is `value` (attributes at `at`, from
 * scanAttributes) and partition key `key` into `out` at `off`; returns the offset after it. The same
 * bytes as the client writes for the headers binaryAttributes gives (no subject header for "").
 */
function writeStructuredBlock(
  value: Buffer,
  key: Uint8Array,
  at: Int32Array,
  out: Buffer,
  off: number,
): number {
  const subjectLength = at[2 * SUBJECT + 1]! - at[2 * SUBJECT]!;
  off = writeVarInt(out, ATTRS.length + (subjectLength > 0 ? 1 : 0), off);
  for (let i = 0; i < ATTRS.length; i++) {
    if (i === SUBJECT) off += CONTENT_TYPE_WIRE.copy(out, off);
    const start = at[2 * i]!;
    const end = at[2 * i + 1]!;
    if (i === SUBJECT && end === start) continue;
    off += HEADER_WIRE_NAMES[i]!.copy(out, off);
    if (i === PARTITIONKEY) {
      off = writeVarInt(out, key.length, off);
      out.set(key, off);
      off += key.length;
    } else {
      off = writeVarInt(out, end - start, off);
      off += value.copy(out, off, start, end);
    }
  }
  return off;
}

/**
 * Builds the Kafka messages of events as Buffers for the client (which then serialises nothing). In
 * the structured envelope (the default) the headers come from the head of the event's JSON, not from
 * a parse of it, and go as one encoded block (HEADER_BLOCK) when the client takes it.
 */
export class KafkaMessageEncoder {
  private readonly envelope: Envelope;
  private readonly database: string;
  private readonly version: string;
  private readonly blocks: boolean;
  private readonly at = new Int32Array(2 * ATTRS.length);
  private readonly names = new Map<string, Buffer>();
  private readonly pairNames: Buffer[] = [];
  private readonly pairValues: Buffer[] = [];
  private headerBytes = 0;
  /** Approximate encoded size of the last message built, in bytes. */
  size = 0;

  constructor(envelope: Envelope, database: string, version: string) {
    this.envelope = envelope;
    this.database = database;
    this.version = version;
    this.blocks = headerBlocks();
  }

  /** The message of one event. */
  message(topic: string, e: EncoderEvent): Msg {
    return this.encode(topic, Buffer.from(e.json), Buffer.from(e.partitionkey));
  }

  /**
   * The message of the event whose JSON is `value` (UTF-8) and partition key `key` (the envelope is
   * parsed from the bytes only when needed).
   */
  encode(topic: string, value: Buffer, key: Buffer): Msg {
    let headers: Map<Buffer, Buffer>;
    if (this.envelope === 'structured') {
      const scanned = scanAttributes(value, this.at);
      if (scanned && this.blocks) headers = this.structuredBlock(value, key);
      else headers = this.headers(this.structuredPairs(value, key, scanned));
    } else {
      const binary = this.binaryPairs(value);
      value = binary.value;
      headers = this.headers(binary.n);
    }
    return this.sized({ topic, key, value, headers });
  }

  /** Binary (or other non-structured) envelope: the value and header pairs of the event's JSON `value`. */
  private binaryPairs(value: Buffer): { value: Buffer; n: number } {
    const json = value.toString('utf8');
    const event = JSON.parse(json) as CloudEvent;
    // encodeEvent reads the envelope and the JSON only
    const m = encodeEvent({ json, event } as OutboundEvent, this.envelope, this.database, this.version);
    let n = 0;
    for (const k in m.headers) {
      this.pairNames[n] = this.name(k);
      this.pairValues[n++] = Buffer.from(m.headers[k]!);
    }
    return { value: Buffer.from(m.value), n };
  }

  /**
   * An event's record value and headers in wire form (count first), whatever the client takes: for
   * record batches we write ourselves (kafka-records.ts).
   */
  record(value: Buffer, key: Buffer): { value: Buffer; headers: Buffer } {
    if (this.envelope === 'structured') {
      const scanned = scanAttributes(value, this.at);
      if (scanned) return { value, headers: this.structuredBlockBytes(value, key) };
      return { value, headers: this.headerBlock(this.structuredPairs(value, key, false)) };
    }
    const binary = this.binaryPairs(value);
    return { value: binary.value, headers: this.headerBlock(binary.n) };
  }

  /** The message of an event whose header block was built already (toWireBatch). */
  withBlock(topic: string, value: Buffer, key: Buffer, block: Buffer): Msg {
    this.headerBytes = block.length;
    return this.sized({ topic, key, value, headers: new Map([[HEADER_BLOCK, block]]) });
  }

  /** Notes the message's approximate encoded size (`size`) and returns it. */
  private sized(m: Msg & { key: Buffer; value: Buffer }): Msg {
    this.size = 24 + 2 * m.key.length + m.value.length + this.headerBytes;
    return m;
  }

  /** The structured headers straight from the value's bytes (attributes found). */
  private structuredBlock(value: Buffer, key: Buffer): Map<Buffer, Buffer> {
    return new Map([[HEADER_BLOCK, this.structuredBlockBytes(value, key)]]);
  }

  /** The structured header block (attributes at this.at, scanned). */
  private structuredBlockBytes(value: Buffer, key: Buffer): Buffer {
    const block = Buffer.allocUnsafe(structuredBlockSize(this.at, key.length));
    this.headerBytes = writeStructuredBlock(value, key, this.at, block, 0);
    return block;
  }

  /**
   * The structured headers as name/value pairs (this.pairNames/pairValues): views of `value` when the
   * attributes were found, else from the parsed event. Returns their count.
   */
  private structuredPairs(value: Buffer, key: Buffer, scanned: boolean): number {
    const at = this.at;
    const attrs = scanned ? undefined : binaryAttributes(JSON.parse(value.toString('utf8')) as CloudEvent);
    let n = 0;
    for (let i = 0; i < ATTRS.length; i++) {
      if (i === SUBJECT) {
        this.pairNames[n] = CONTENT_TYPE;
        this.pairValues[n++] = STRUCTURED_CONTENT_TYPE_BUF;
      }
      let v: Buffer | undefined;
      if (i === PARTITIONKEY) v = key;
      else if (!attrs) v = value.subarray(at[2 * i]!, at[2 * i + 1]!);
      else {
        const t = attrs[`ce_${ATTRS[i]!}`];
        if (t !== undefined) v = Buffer.from(t);
      }
      if (!v || (i === SUBJECT && v.length === 0)) continue; // no subject header for "" (binaryAttributes)
      this.pairNames[n] = HEADER_NAMES[i]!;
      this.pairValues[n++] = v;
    }
    return n;
  }

  /** The first `n` pairs as the record's headers: one encoded block, or a Map. */
  private headers(n: number): Map<Buffer, Buffer> {
    if (!this.blocks) {
      this.headerBytes = this.headerBlockSize(n);
      const map = new Map<Buffer, Buffer>();
      for (let i = 0; i < n; i++) map.set(this.pairNames[i]!, this.pairValues[i]!);
      return map;
    }
    return new Map([[HEADER_BLOCK, this.headerBlock(n)]]);
  }

  private headerBlockSize(n: number): number {
    let size = varIntSize(n);
    for (let i = 0; i < n; i++) {
      const k = this.pairNames[i]!.length;
      const v = this.pairValues[i]!.length;
      size += varIntSize(k) + k + varIntSize(v) + v;
    }
    return size;
  }

  /** The first `n` pairs in wire form: [count][name length][name][value length][value]... */
  private headerBlock(n: number): Buffer {
    const size = (this.headerBytes = this.headerBlockSize(n));
    const block = Buffer.allocUnsafe(size);
    let off = writeVarInt(block, n, 0);
    for (let i = 0; i < n; i++) {
      const k = this.pairNames[i]!;
      const v = this.pairValues[i]!;
      off = writeVarInt(block, k.length, off);
      off += k.copy(block, off);
      off = writeVarInt(block, v.length, off);
      off += v.copy(block, off);
    }
    return block;
  }

  private name(header: string): Buffer {
    let b = this.names.get(header);
    if (!b) {
      b = Buffer.from(header);
      if (this.names.size < 1000) this.names.set(header, b);
    }
    return b;
  }
}

/** True when `err` or one of the errors it aggregates is the Kafka error `apiId`. */
function hasKafkaError(err: unknown, apiId: string): boolean {
  const e = err as { apiId?: string; errors?: unknown[] } | undefined;
  return (
    !!e && (e.apiId === apiId || (Array.isArray(e.errors) && e.errors.some((x) => hasKafkaError(x, apiId))))
  );
}

/**
 * The clients' pause before a retry. CONCURRENT_TRANSACTIONS is the coordinator still writing the
 * previous transaction's commit markers when the next one adds its partitions: a matter of
 * milliseconds, so retried after 1, 2, 4, 8, 16 ms rather than after the pause meant for a broker
 * that is down (with 500 ms, every back-to-back transaction of a steady stream waited half a second;
 * with 20 ms, the Java client's pause, the commit-to-ack median at 1k events/s was 26 ms, with 5 ms 14;
 * in a catch-up, back-to-back 2,000-event transactions spent 5.8-6.4 ms each adding partitions with
 * 5 ms, 2.7 ms with 1 ms, and the writer alone went from 115-129k to 159-169k events/s).
 * addAllPartitions keeps trying past the client's retries (see there).
 */
export function retryDelay(baseMs: number) {
  return (_client: unknown, _operation: string, attempt: number, _retries: number, err: unknown): number =>
    hasKafkaError(err, 'CONCURRENT_TRANSACTIONS') ? Math.min(baseMs, 2 ** Math.max(0, attempt - 1)) : baseMs;
}

/**
 * How long addAllPartitions keeps retrying CONCURRENT_TRANSACTIONS beyond the client's own retries
 * (which give up after about 31 ms): a busy coordinator can take longer to finish the previous
 * commit, and failing the transaction for it would cost a new producer and a checkpoint read.
 */
const CONCURRENT_TRANSACTIONS_PATIENCE_MS = 5000;

/**
 * Adds every partition of `topics` to the transaction. @platformatic/kafka merges concurrent
 * AddPartitionsToTxn calls of one transaction whatever their partitions, so concurrent sends adding
 * partitions each on their own would produce to partitions never added (TRANSACTION_ABORTABLE): with
 * every partition added first, a transaction's requests can go out back to back. (Partitions already
 * in the transaction cost nothing.)
 */
export async function addAllPartitions(
  producer: KafkaProducer,
  tx: Transaction,
  topics: Iterable<string>,
  known?: ClusterMetadata,
): Promise<void> {
  const names = [...new Set(topics)];
  const metadata = known ?? (await producer.metadata({ topics: names }));
  const partitions: MessageRecord[] = [];
  for (const topic of names) {
    const n = metadata.topics.get(topic)?.partitionsCount ?? 0;
    for (let partition = 0; partition < n; partition++) partitions.push({ topic, partition, value: EMPTY });
  }
  const deadline = Date.now() + CONCURRENT_TRANSACTIONS_PATIENCE_MS;
  for (;;) {
    try {
      await tx.addPartitions(metadata, partitions);
      return;
    } catch (err) {
      if (!hasKafkaError(err, 'CONCURRENT_TRANSACTIONS') || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/**
 * Sends Produce requests (in `tx` if given) back to back without waiting for each other's acks: the
 * client queues them in order on the broker connection (one in flight, so sequence numbers stay in
 * order) while the broker works on the previous one.
 */
export async function sendAll(producer: KafkaProducer, requests: Msg[][], tx?: Transaction): Promise<void> {
  if (tx)
    await addAllPartitions(
      producer,
      tx,
      requests.flatMap((r) => r.map((m) => m.topic)),
    );
  await settleAll(requests.map((messages) => (tx ?? producer).send({ messages })));
}

/** Waits for every promise, then throws the first failure. */
async function settleAll(all: Promise<unknown>[]): Promise<void> {
  for (const r of await Promise.allSettled(all)) if (r.status === 'rejected') throw r.reason;
}
const EMPTY = Buffer.alloc(0);

/** Record batch compression of the sink's messages unless told otherwise. */
export const DEFAULT_KAFKA_COMPRESSION: CompressionAlgorithmValue = 'lz4';

/**
 * The sink's producer settings (the bench's "Kafka client alone" uses them too): idempotent, acks=all,
 * transactional when given an id. LZ4 by default: JSON events shrink several times, which costs less
 * CPU than handing the uncompressed bytes to the socket, here and in the broker.
 */
export function kafkaProducerOptions(
  base: BaseOptions,
  o: { transactionalId?: string; compression?: CompressionAlgorithmValue },
): ProducerOptions<Buffer, Buffer, Buffer, Buffer> {
  return {
    ...base,
    idempotent: true,
    acks: ProduceAcks.ALL,
    compression: o.compression ?? DEFAULT_KAFKA_COMPRESSION,
    ...(o.transactionalId ? { transactionalId: o.transactionalId } : {}),
    // @platformatic/kafka 2.12 sends InitProducerId v3+ with producerId 0 / epoch 0 unless told
    // otherwise, and the coordinator answers PRODUCER_FENCED to a restarted process whose
    // transactional id already has another producer id. -1/-1 is what a new producer must send.
    producerId: -1n,
    producerEpoch: -1,
  };
}

/**
 * A batch as the producer side takes it, cheap to hand to the sink's thread (every part is transferred,
 * none copied): the events' JSON as UTF-8 back to back in one buffer (event i's bytes end at ends[i]
 * and start at the previous event's end), their keys likewise, typed arrays for the rest.
 */
export interface WireBatch {
  /** Distinct topics of the batch; event i goes to `topics[topic[i]]`. */
  topics: string[];
  topic: Uint32Array;
  bytes: Uint8Array;
  ends: Uint32Array;
  keys: Uint8Array;
  keyEnds: Uint32Array;
  /**
   * Structured envelope: each event's header block (as KafkaMessageEncoder builds it), built here
   * because the producer's thread is the busier of the two; an empty block means "the thread builds
   * it" (attributes not found by the scan).
   */
  headers?: Uint8Array;
  headerEnds?: Uint32Array;
  commitLsn: BigUint64Array;
  seq: Uint32Array;
  /** The one buffer every array above is a view of (transferred as one, and given back for reuse). */
  buffer: ArrayBuffer;
}

/**
 * Spare WireBatch buffers. The sink's thread gives each batch's buffer back once written: a fresh
 * multi-megabyte ArrayBuffer per batch counted as external memory in the thread and made V8 run a
 * full mark-compact there every 60–90 ms (40% of the thread's time in the profile).
 */
export class WireBufferPool {
  private readonly free: ArrayBuffer[] = [];
  private readonly keep: number;

  constructor(keep = 4) {
    this.keep = keep;
  }

  /** A buffer of at least `size` bytes (the smallest spare that fits, else a new one, not zeroed). */
  take(size: number): ArrayBuffer {
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      const b = this.free[i]!;
      if (b.byteLength >= size && (best < 0 || b.byteLength < this.free[best]!.byteLength)) best = i;
    }
    if (best >= 0) return this.free.splice(best, 1)[0]!;
    // rounded up, so that batches of slightly different sizes reuse each other's buffers
    const rounded = Math.max(64 * 1024, 2 ** Math.ceil(Math.log2(size)));
    // Not from Buffer's shared pool: the buffer is transferred to the sink's thread.
    return Buffer.allocUnsafeSlow(rounded).buffer as ArrayBuffer;
  }

  /** Takes back a buffer no longer in use (beyond `keep` spares, the smallest goes to the GC). */
  give(b: ArrayBuffer): void {
    if (b.byteLength === 0) return; // detached
    this.free.push(b);
    if (this.free.length > this.keep) {
      this.free.sort((x, y) => y.byteLength - x.byteLength);
      this.free.length = this.keep;
    }
  }
}

/** Where item i of values packed back to back starts (item i ends at ends[i]: WireBatch's layout). */
function startOf(ends: Uint32Array, i: number): number {
  return i === 0 ? 0 : ends[i - 1]!;
}

/** Item i of values packed back to back in `b`. */
function packed(b: Buffer, ends: Uint32Array, i: number): Buffer {
  return b.subarray(startOf(ends, i), ends[i]!);
}

/** A transferred typed array's bytes as a Buffer (the same memory). */
function asBuffer(a: Uint8Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

export function toWireBatch(
  batch: readonly OutboundEvent[],
  route: (e: OutboundEvent) => string,
  envelope: Envelope,
  pool?: WireBufferPool,
): WireBatch {
  const n = batch.length;
  let end = 0;
  let keyChars = 0;
  for (let i = 0; i < n; i++) {
    const e = batch[i]!;
    end += e.bytes;
    keyChars += e.partitionkey.length;
  }
  const structured = envelope === 'structured';
  const keyBound = 3 * keyChars; // UTF-8 of a UTF-16 unit: at most 3 bytes
  const headerBound = structured ? n * STRUCTURED_BLOCK_OVERHEAD + end + keyBound : 0;
  // one buffer: the 8-byte LSNs first (alignment), then the 4-byte arrays, then the bytes
  const arrays = 8 * n + 4 * n * (structured ? 5 : 4);
  const size = arrays + end + keyBound + headerBound;
  const buffer = pool ? pool.take(size) : (Buffer.allocUnsafeSlow(size).buffer as ArrayBuffer);
  let at = 0;
  const u32 = () => {
    const a = new Uint32Array(buffer, at, n);
    at += 4 * n;
    return a;
  };
  const commitLsn = new BigUint64Array(buffer, 0, n);
  at = 8 * n;
  const w: WireBatch = {
    topics: [],
    topic: u32(),
    bytes: new Uint8Array(0),
    ends: u32(),
    keys: new Uint8Array(0),
    keyEnds: u32(),
    commitLsn,
    seq: u32(),
    buffer,
  };
  const headerEnds = structured ? u32() : undefined;
  const bytes = Buffer.from(buffer, at, end);
  const keys = Buffer.from(buffer, at + end, keyBound);
  let lastTopic = '';
  let topicIndex = -1;
  let off = 0;
  let keyEnd = 0;
  for (let i = 0; i < n; i++) {
    const e = batch[i]!;
    const t = route(e);
    if (t !== lastTopic) {
      lastTopic = t;
      topicIndex = w.topics.indexOf(t);
      if (topicIndex < 0) topicIndex = w.topics.push(t) - 1;
    }
    w.topic[i] = topicIndex;
    off += bytes.write(e.json, off);
    w.ends[i] = off;
    w.keyEnds[i] = keyEnd += keys.write(e.partitionkey, keyEnd);
    w.commitLsn[i] = e.position.commitLsn;
    w.seq[i] = e.position.seq;
  }
  if (off !== end) throw new KafkaSinkError(`a batch came to ${off} bytes, its events say ${end}`);
  w.bytes = bytes;
  w.keys = keys.subarray(0, keyEnd);
  if (headerEnds) {
    const headers = Buffer.from(buffer, at + end + keyBound, headerBound);
    const attrs = new Int32Array(2 * ATTRS.length);
    let hoff = 0;
    for (let i = 0; i < n; i++) {
      const value = packed(bytes, w.ends, i);
      if (scanAttributes(value, attrs))
        hoff = writeStructuredBlock(value, packed(keys, w.keyEnds, i), attrs, headers, hoff);
      headerEnds[i] = hoff;
    }
    w.headers = headers.subarray(0, hoff);
    w.headerEnds = headerEnds;
  }
  return w;
}

type SinkLogger = Pick<Logger, 'info' | 'warn'>;

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
  async open(): Promise<Position | null> {
    await this.ensureTopics();
    if (!this.o.exactlyOnce) return null;
    // Beginning a transaction initialises the transactional id: it fences an older instance and makes
    // the coordinator finish (abort) any transaction that one left open, so what we read next is final.
    const producer = this.newProducer();
    const tx = await producer.beginTransaction();
    await tx.cancel();
    this.checkpoint = await this.readCheckpoint();
    this.log?.info(
      {
        sink: 'kafka',
        transactionalId: transactionalIdFor(this.o.clientId, this.o.slot),
        checkpoint: this.checkpoint ? formatPosition(this.checkpoint) : null,
      },
      'kafka checkpoint read',
    );
    return this.checkpoint;
  }

  /** The outcome of a write in flight is unknown (e.g. the thread running it died): recheck first. */
  uncertain(): void {
    this.recheck = true;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.dropProducer();
  }

  private newProducer(): KafkaProducer {
    this.produceVersion = undefined;
    this.producer = new Producer(
      kafkaProducerOptions(this.base('producer'), {
        transactionalId: this.o.exactlyOnce ? transactionalIdFor(this.o.clientId, this.o.slot) : undefined,
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
        key: Buffer.from(this.o.slot),
        value: Buffer.from(JSON.stringify(checkpointValue(this.o.slot, last))),
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
      const m =
        block?.length && headerBlocks()
          ? this.encoder.withBlock(topic, value, key, block)
          : this.encoder.encode(topic, value, key);
      if (request.length > 0 && size + this.encoder.size > MAX_REQUEST_BYTES) {
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
      size += this.encoder.size;
    }
    if (checkpoint) request.push(checkpoint);
    sends.push(target.send({ messages: request }));
    await settleAll(sends);
  }

  /**
   * `produce` with record batches written here (kafka-records.ts) rather than the client's per-message
   * send: per Produce request of at most MAX_REQUEST_BYTES (uncompressed), one record batch per
   * partition, written straight from the WireBatch's packed bytes; each request goes out as soon as
   * it is written, the next written while the broker works on it. Partitions as the client's default
   * partitioner picks them (murmur2 of the key), so a key's partition does not change with the path.
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
      if (headerBytes === 0) {
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
      if (this.o.exactlyOnce && !existing.has(this.o.checkpointTopic)) {
        await create([this.o.checkpointTopic], 1, [
          { name: 'cleanup.policy', value: 'compact' },
          { name: 'min.compaction.lag.ms', value: '60000' },
        ]);
      }
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
  readCheckpoint(): Promise<Position | null> {
    return readKafkaCheckpoint(this.base('checkpoint-reader'), this.o.checkpointTopic, this.o.slot);
  }
}

/** A (topic index, partition) pair as one number: topic * PARTITION_SPAN + partition (partitions are int32). */
const PARTITION_SPAN = 2 ** 31;

/** What produceRecordBatches knows of a batch while it writes its record batches. */
interface RecordParts {
  bytes: Buffer;
  keys: Buffer;
  headers: Buffer;
  batch: WireBatch;
  /** Each event's partition in its topic. */
  partition: Uint32Array;
  /** Events whose value or headers the thread encoded itself (no header block in the batch). */
  slow: ({ value: Buffer; headers: Buffer } | undefined)[];
  checkpoint?: Msg;
  /** The checkpoint record's topic index: one past the batch's topics. */
  checkpointTopic: number;
  checkpointPartition: number;
}

const NO_HEADERS = Buffer.from([0]);

/** Bytes of the records of events `list` (indices of p.batch; -1: the checkpoint record). */
function recordsSize(p: RecordParts, list: number[]): number {
  const { ends, keyEnds } = p.batch;
  const headerEnds = p.batch.headerEnds;
  let size = 0;
  for (let d = 0; d < list.length; d++) {
    const i = list[d]!;
    let body: number;
    if (i < 0) body = recordBodySize(d, p.checkpoint!.key!.length, (p.checkpoint!.value as Buffer).length, 1);
    else {
      const key = keyEnds[i]! - startOf(keyEnds, i);
      const slow = p.slow[i];
      body = slow
        ? recordBodySize(d, key, slow.value.length, slow.headers.length)
        : recordBodySize(d, key, ends[i]! - startOf(ends, i), headerEnds![i]! - startOf(headerEnds!, i));
    }
    size += varIntSize(body) + body;
  }
  return size;
}

/** The records of events `list` back to back into `out` (recordsSize bytes). */
function writeRecords(p: RecordParts, list: number[], out: Buffer): Buffer {
  const { ends, keyEnds } = p.batch;
  const headerEnds = p.batch.headerEnds;
  const size = out.length;
  let off = 0;
  for (let d = 0; d < list.length; d++) {
    const i = list[d]!;
    if (i < 0) {
      const key = p.checkpoint!.key!;
      const value = p.checkpoint!.value as Buffer;
      off = writeRecord(out, off, d, key, 0, key.length, value, 0, value.length, NO_HEADERS, 0, 1);
      continue;
    }
    const keyStart = startOf(keyEnds, i);
    const slow = p.slow[i];
    if (slow) {
      off = writeRecord(
        out,
        off,
        d,
        p.keys,
        keyStart,
        keyEnds[i]!,
        slow.value,
        0,
        slow.value.length,
        slow.headers,
        0,
        slow.headers.length,
      );
    } else {
      off = writeRecord(
        out,
        off,
        d,
        p.keys,
        keyStart,
        keyEnds[i]!,
        p.bytes,
        startOf(ends, i),
        ends[i]!,
        p.headers,
        startOf(headerEnds!, i),
        headerEnds![i]!,
      );
    }
  }
  if (off !== size) throw new KafkaSinkError(`kafka: records came to ${off} bytes, expected ${size}`);
  return out;
}

function positionOf(b: WireBatch, i: number): Position {
  return { commitLsn: b.commitLsn[i]!, seq: b.seq[i]! };
}

/** Every client's connection settings. */
function kafkaBaseOptions(o: KafkaSinkOptions, suffix: string): BaseOptions {
  return {
    clientId: `${o.clientId}-${suffix}`,
    bootstrapBrokers: o.brokers,
    timeout: o.timeoutMs ?? 15000,
    connectTimeout: 5000,
    retries: o.retries ?? 5,
    retryDelay: retryDelay(500),
    ...o.connection,
  };
}

/** The thread died (or never started): not an answer of the writer. */
class KafkaThreadError extends KafkaSinkError {}

type RequestBody = { op: 'open'; uncertain: boolean } | { op: 'write'; batch: WireBatch } | { op: 'close' };
type Request = RequestBody & { id: number };
type Reply =
  | { id: number; ok: true; value?: unknown; spare?: ArrayBuffer }
  | { id: number; ok: false; message: string; spare?: undefined }
  | { log: 'info' | 'warn'; obj: object; msg: string };

const WORKER_MARK = 'tagConnectorKafkaSink';

/**
 * The sink's thread: the producer and its encoding (headers, record batches, compression) cost about as
 * much CPU per event as the rest of the pipeline, and run here beside it instead of on the main thread.
 * Requests are answered in order; a thread that dies fails what was in flight (the next write starts a
 * new one, which reads the checkpoint again before writing).
 */
class KafkaThread {
  private readonly worker: Worker;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  dead = false;

  constructor(options: Omit<KafkaSinkOptions, 'logger'>, logger: Logger | undefined, pool: WireBufferPool) {
    this.worker = new Worker(new URL(import.meta.url), { workerData: { [WORKER_MARK]: options } });
    this.worker.unref();
    this.worker.on('message', (m: Reply) => {
      if ('log' in m) {
        logger?.[m.log](m.obj, m.msg);
        return;
      }
      if (m.spare) pool.give(m.spare);
      const p = this.pending.get(m.id);
      if (!p) return;
      this.settled(m.id);
      if (m.ok) p.resolve(m.value);
      else p.reject(new KafkaSinkError(m.message));
    });
    const fail = (err: Error) => {
      this.dead = true;
      const all = [...this.pending.values()];
      this.pending.clear();
      this.worker.unref();
      for (const p of all) p.reject(new KafkaThreadError(`the kafka sink's thread failed: ${err.message}`));
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`exited with code ${code}`)));
  }

  private settled(id: number): void {
    this.pending.delete(id);
    if (this.pending.size === 0) this.worker.unref();
  }

  call<T>(request: RequestBody, transfer: Transferable[] = []): Promise<T> {
    if (this.dead) return Promise.reject(new KafkaThreadError("the kafka sink's thread is gone"));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      if (this.pending.size === 0) this.worker.ref(); // a pending answer keeps the process alive
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ ...request, id }, transfer);
    });
  }

  async terminate(): Promise<void> {
    this.dead = true;
    await this.worker.terminate();
  }
}

/** The worker side of KafkaThread. */
function serveKafkaThread(options: KafkaSinkOptions): void {
  const port = parentPort!;
  const log: SinkLogger = {
    info: ((obj: object, msg: string) => port.postMessage({ log: 'info', obj, msg })) as SinkLogger['info'],
    warn: ((obj: object, msg: string) => port.postMessage({ log: 'warn', obj, msg })) as SinkLogger['warn'],
  };
  const tls = options.connection?.tls as { ca?: unknown } | undefined;
  if (tls?.ca instanceof Uint8Array) tls.ca = Buffer.from(tls.ca); // cloned as a plain Uint8Array
  const writer = new KafkaWriter(options, log);
  port.on('message', (r: Request) => {
    const run = async (): Promise<unknown> => {
      switch (r.op) {
        case 'open': {
          const cp = await writer.open();
          if (r.uncertain) writer.uncertain();
          return cp;
        }
        case 'write':
          return writer.write(r.batch);
        case 'close':
          return writer.close();
      }
    };
    run().then(
      (value) => {
        // A written batch's buffer goes back to the main thread's pool: nothing refers to it once
        // every request is answered. (After a failure a send may still hold a view: the GC frees it.)
        const spare = r.op === 'write' ? r.batch.buffer : undefined;
        port.postMessage({ id: r.id, ok: true, value, spare }, spare ? [spare] : []);
        if (r.op === 'close') port.close();
      },
      (err: Error) => port.postMessage({ id: r.id, ok: false, message: err.message }),
    );
  });
}

if (!isMainThread && (workerData as Record<string, unknown> | null)?.[WORKER_MARK]) {
  serveKafkaThread((workerData as Record<string, KafkaSinkOptions>)[WORKER_MARK]!);
}

/**
 * The Kafka sink. The producer side (KafkaWriter) runs in a thread of its own by default; the main
 * thread only routes each event and hands its JSON and key over. `thread: false` keeps it in-process.
 */
export class KafkaSink implements Sink {
  readonly name = 'kafka';
  readonly ownsCheckpoint: boolean;
  private readonly o: KafkaSinkOptions;
  private readonly route: (e: OutboundEvent) => string;
  private thread?: KafkaThread;
  private writer?: KafkaWriter;
  /** Producing from a thread of the sink's own (see KafkaThread), else on the caller's. */
  private threaded: boolean;
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;
  private readonly pool = new WireBufferPool();

  constructor(options: KafkaSinkOptions) {
    this.o = options;
    this.ownsCheckpoint = options.exactlyOnce;
    this.route = topicRouter(options.routes, options.topic);
    this.threaded = options.thread !== false;
  }

  async open(): Promise<Position | null> {
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

  private async openThread(uncertain: boolean): Promise<Position | null> {
    const { logger, ...options } = this.o;
    try {
      this.thread = new KafkaThread(options, logger, this.pool);
    } catch (err) {
      throw new KafkaThreadError(`cannot start the kafka sink's thread: ${(err as Error).message}`);
    }
    return this.thread.call<Position | null>({ op: 'open', uncertain });
  }

  /** The batch's wire form, built on the caller's thread while the previous transaction runs. */
  prepare(batch: readonly OutboundEvent[]): WireBatch {
    return toWireBatch(batch, this.route, this.o.envelope, this.pool);
  }

  write(batch: readonly OutboundEvent[], prepared?: unknown): Promise<void> {
    // Serialised: one transaction at a time, even if a caller overlaps writes.
    const run = this.chain.then(() => this.writeNow(batch, prepared as WireBatch | undefined));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async writeNow(batch: readonly OutboundEvent[], prepared?: WireBatch): Promise<void> {
    if (this.closed) throw new KafkaSinkError('the kafka sink is closed');
    if (batch.length === 0) return;
    const wire = prepared ?? this.prepare(batch);
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
  readCheckpoint(): Promise<Position | null> {
    return readKafkaCheckpoint(
      kafkaBaseOptions(this.o, 'checkpoint-reader'),
      this.o.checkpointTopic,
      this.o.slot,
    );
  }
}

/**
 * Reads the compacted checkpoint topic from its start to the last stable offset (read_committed, aborted
 * transactions filtered by us) and returns the latest committed value for `key`, or null.
 */
export async function readKafkaCheckpoint(
  base: BaseOptions,
  topic: string,
  key: string,
): Promise<Position | null> {
  const reader = new CommittedReader(base, topic);
  try {
    if (!(await reader.init('beginning'))) return null;
    let found: Position | null = null;
    await reader.readToEnd((records) => {
      for (const r of records) {
        if (r.key !== key || !r.value) continue;
        const pos = parseCheckpointValue(r.value);
        if (!found || comparePosition(pos, found) > 0) found = pos;
      }
    });
    return found;
  } finally {
    await reader.close();
  }
}

/** TLS / SASL options for every Kafka client, from the config. */
export function kafkaConnectionOptions(config: Config): Partial<BaseOptions> {
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

export async function createKafkaSink(ctx: SinkContext): Promise<Sink> {
  const c = ctx.config;
  if (!c.kafkaBrokers?.length) {
    throw new KafkaSinkError('--sink kafka needs --kafka-brokers host:port[,host:port...]');
  }
  return new KafkaSink({
    brokers: c.kafkaBrokers,
    slot: c.slot,
    topic: c.topic ?? DEFAULT_TOPIC,
    routes: c.topicRoutes,
    checkpointTopic: c.kafkaCheckpointTopic,
    exactlyOnce: c.kafkaExactlyOnce,
    envelope: c.envelope,
    partitions: c.kafkaPartitions,
    replicationFactor: c.kafkaReplicationFactor,
    clientId: c.kafkaClientId,
    compression: c.kafkaCompression,
    database: ctx.database,
    version: ctx.version,
    connection: kafkaConnectionOptions(c),
    logger: ctx.logger,
  });
}
