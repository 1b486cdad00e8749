import { binaryAttributes, type CloudEvent } from '../../events/envelope.ts';
import type { AvroEventEncoder, AvroItem } from '../avro/encoder.ts';
import type { PackedBatch } from '../batch.ts';
import { varIntSize, writeVarInt } from './records.ts';
import type { TombstonePolicy, WireBatch, WireBufferPool } from './wire-batch.ts';

/** The content type of an Avro value in Confluent's framing (docs/governance.md "Avro"). */
export const AVRO_CONTENT_TYPE = 'application/vnd.confluent.avro';

/** The CloudEvents attributes of an Avro event as headers (binary mode), and its content type. */
function headerBlock(event: CloudEvent): Buffer {
  const pairs: [Buffer, Buffer][] = Object.entries(binaryAttributes(event)).map(([k, v]) => [
    Buffer.from(k),
    Buffer.from(v),
  ]);
  pairs.push([Buffer.from('content-type'), Buffer.from(AVRO_CONTENT_TYPE)]);
  let size = varIntSize(pairs.length);
  for (const [k, v] of pairs) size += varIntSize(k.length) + k.length + varIntSize(v.length) + v.length;
  const out = Buffer.allocUnsafe(size);
  let off = writeVarInt(out, pairs.length, 0);
  for (const [k, v] of pairs) {
    off = writeVarInt(out, k.length, off);
    off += k.copy(out, off);
    off = writeVarInt(out, v.length, off);
    off += v.copy(out, off);
  }
  return out;
}

const NO_HEADERS = Buffer.from([0]);

/**
 * A batch as the producer side takes it (toWireBatch's layout), with Avro values in Confluent's framing
 * and the CloudEvents attributes as headers: encoded here, on the caller's thread, because schemas are
 * registered over HTTP on first use. Tombstones as toWireBatch makes them (a null value, no headers).
 */
export async function toAvroWireBatch(
  batch: PackedBatch,
  route: (type: string, table: string) => string,
  avro: AvroEventEncoder,
  pool?: WireBufferPool,
  tombstones?: TombstonePolicy,
): Promise<WireBatch> {
  const items: AvroItem[] = [];
  const keys: string[] = [];
  const commitLsns: bigint[] = [];
  const seqs: number[] = [];
  const stones: boolean[] = [];
  for (let r = 0; r < batch.blocks.length; r++) {
    const b = batch.blocks[r]!;
    for (let i = batch.froms[r]!; i < batch.tos[r]!; i++) {
      const table = b.tables[i]!;
      const type = b.types[i]!;
      items.push({ table, topic: route(type, table), event: JSON.parse(b.json(i)) as CloudEvent });
      keys.push(b.keys[i]!);
      commitLsns.push(b.commitLsns[i]!);
      seqs.push(b.seqs[i]!);
      stones.push(tombstones?.(type, table) ?? false);
    }
  }
  const values = await avro.encodeAll(items);
  const headers = items.map((it) => headerBlock(it.event));
  const keyBufs = keys.map((k) => Buffer.from(k));

  const tombs = stones.filter(Boolean).length;
  const n = items.length + tombs;
  let valueBytes = 0;
  let keyBytes = 0;
  let headerBytes = tombs; // a tombstone's empty header block: one byte
  for (let i = 0; i < items.length; i++) {
    valueBytes += values[i]!.length;
    keyBytes += keyBufs[i]!.length * (stones[i] ? 2 : 1);
    headerBytes += headers[i]!.length;
  }
  const arrays = 8 * n + 4 * n * 5 + (tombs ? n : 0);
  const size = arrays + valueBytes + keyBytes + headerBytes;
  const buffer = pool ? pool.take(size) : (Buffer.allocUnsafeSlow(size).buffer as ArrayBuffer);
  let at = 8 * n;
  const u32 = () => {
    const a = new Uint32Array(buffer, at, n);
    at += 4 * n;
    return a;
  };
  const w: WireBatch = {
    topics: [],
    commitLsn: new BigUint64Array(buffer, 0, n),
    topic: u32(),
    ends: u32(),
    keyEnds: u32(),
    seq: u32(),
    headerEnds: u32(),
    bytes: new Uint8Array(0),
    keys: new Uint8Array(0),
    buffer,
  };
  if (tombs) {
    w.tombstone = new Uint8Array(buffer, at, n).fill(0);
    at += n;
  }
  const bytes = Buffer.from(buffer, at, valueBytes);
  const keyOut = Buffer.from(buffer, at + valueBytes, keyBytes);
  const headerOut = Buffer.from(buffer, at + valueBytes + keyBytes, headerBytes);
  let off = 0;
  let keyEnd = 0;
  let hoff = 0;
  let k = 0;
  const push = (i: number, stone: boolean) => {
    const t = items[i]!.topic;
    let ti = w.topics.indexOf(t);
    if (ti < 0) ti = w.topics.push(t) - 1;
    w.topic[k] = ti;
    if (!stone) off += values[i]!.copy(bytes, off);
    w.ends[k] = off;
    keyEnd += keyBufs[i]!.copy(keyOut, keyEnd);
    w.keyEnds[k] = keyEnd;
    hoff += (stone ? NO_HEADERS : headers[i]!).copy(headerOut, hoff);
    w.headerEnds![k] = hoff;
    w.commitLsn[k] = commitLsns[i]!;
    w.seq[k] = seqs[i]!;
    if (stone) w.tombstone![k] = 1;
    k++;
  };
  for (let i = 0; i < items.length; i++) {
    push(i, false);
    if (stones[i]) push(i, true);
  }
  w.bytes = bytes;
  w.keys = keyOut;
  w.headers = headerOut;
  return w;
}
