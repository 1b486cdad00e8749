import { binaryAttributes, type CloudEvent } from '../../events/envelope.ts';
import { encodeEvent, type Envelope } from '../encode.ts';
import type { OutboundEvent } from '../sink.ts';
import {
  ATTRS,
  CONTENT_TYPE,
  HEADER_BLOCK,
  HEADER_NAMES,
  headerBlocks,
  PARTITIONKEY,
  scanAttributes,
  STRUCTURED_CONTENT_TYPE_BUF,
  structuredBlockSize,
  SUBJECT,
  writeStructuredBlock,
} from './headers.ts';
import type { Msg } from './options.ts';
import { varIntSize, writeVarInt } from './records.ts';

/** What the encoder reads of an event. */
export type EncoderEvent = Pick<OutboundEvent, 'json' | 'partitionkey'>;

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
   * record batches we write ourselves (records.ts).
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
