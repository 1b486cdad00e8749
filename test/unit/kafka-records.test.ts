import { describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import {
  createRecord,
  jsCRC32C,
  murmur2 as clientMurmur2,
  Reader,
  readRecordsBatch,
} from '@platformatic/kafka';
import {
  murmur2,
  nextSequence,
  recordBatch,
  recordBodySize,
  Sequences,
  varIntSize,
  writeRecord,
} from '../../src/sinks/kafka/index.ts';

function headerBlock(pairs: [string, string][]): Buffer {
  const parts: Buffer[] = [];
  const varint = (n: number) => {
    const b: number[] = [];
    let z = n * 2;
    while (z >= 0x80) {
      b.push((z & 0x7f) | 0x80);
      z = Math.floor(z / 128);
    }
    b.push(z);
    return Buffer.from(b);
  };
  parts.push(varint(pairs.length));
  for (const [k, v] of pairs) {
    const kb = Buffer.from(k);
    const vb = Buffer.from(v);
    parts.push(varint(kb.length), kb, varint(vb.length), vb);
  }
  return Buffer.concat(parts);
}

type Rec = { key: Buffer; value: Buffer; headers: [string, string][] };

function records(recs: Rec[]): Buffer {
  const blocks = recs.map((r) => headerBlock(r.headers));
  let size = 0;
  recs.forEach((r, d) => {
    const body = recordBodySize(d, r.key.length, r.value.length, blocks[d]!.length);
    size += varIntSize(body) + body;
  });
  const out = Buffer.alloc(size);
  let off = 0;
  recs.forEach((r, d) => {
    off = writeRecord(
      out,
      off,
      d,
      r.key,
      0,
      r.key.length,
      r.value,
      0,
      r.value.length,
      blocks[d]!,
      0,
      blocks[d]!.length,
    );
  });
  expect(off).toBe(size);
  return out;
}

describe('kafka record batches of our own', () => {
  // The Java client itself is the oracle in test/integration/kafka-partitioner.test.ts; this is the
  // quick check against a second JavaScript implementation.
  it('murmur2 agrees with @platformatic/kafka’s, for every tail length and inside a larger buffer', () => {
    for (let i = 0; i < 2000; i++) {
      const b = randomBytes(i % 67);
      expect(murmur2(b)).toBe(clientMurmur2(b));
    }
    // a part of a buffer hashes as that part alone
    const b = Buffer.from('xxtask:7f3a-42yy');
    expect(murmur2(b, 2, b.length - 2)).toBe(clientMurmur2(Buffer.from('task:7f3a-42')));
  });

  it('writes a record exactly as the client does (timestamp delta 0)', () => {
    const key = Buffer.from('task-1');
    const value = Buffer.from('{"id":"0/16B3748/0","data":"é"}');
    const pairs: [string, string][] = [
      ['ce_id', '0/16B3748/0'],
      ['content-type', 'application/cloudevents+json; charset=utf-8'],
      ['x'.repeat(70), 'y'.repeat(200)],
    ];
    for (const offsetDelta of [0, 3, 64, 300]) {
      const headers = new Map(pairs.map(([k, v]) => [Buffer.from(k), Buffer.from(v)]));
      const expected = createRecord(
        { key, value, headers, topic: 't', timestamp: 7n },
        offsetDelta,
        7n,
      ).buffer;
      const block = headerBlock(pairs);
      const body = recordBodySize(offsetDelta, key.length, value.length, block.length);
      const out = Buffer.alloc(varIntSize(body) + body);
      writeRecord(out, 0, offsetDelta, key, 0, key.length, value, 0, value.length, block, 0, block.length);
      expect(out.equals(expected)).toBe(true);
    }
  });

  it.each(['none', 'lz4', 'gzip', 'snappy', 'zstd'] as const)(
    'builds a batch the client reads back (%s), CRC and all',
    (compression) => {
      const recs: Rec[] = Array.from({ length: 50 }, (_, i) => ({
        key: Buffer.from(`k${i % 7}`),
        value: Buffer.from(JSON.stringify({ i, text: 'v'.repeat(i * 3) })),
        headers: [
          ['ce_id', `0/1/${i}`],
          ['ce_type', 'task.created'],
        ],
      }));
      const parts = recordBatch(records(recs), {
        count: recs.length,
        producerId: 4242n,
        producerEpoch: 3,
        baseSequence: 100,
        transactional: true,
        compression,
        timestamp: 1_700_000_000_000,
      });
      const batch = Buffer.concat([parts.head, parts.payload]);
      const read = readRecordsBatch(Reader.from(batch));
      expect(read.length).toBe(batch.length - 12);
      expect(read.magic).toBe(2);
      expect(read.producerId).toBe(4242n);
      expect(read.producerEpoch).toBe(3);
      expect(read.firstSequence).toBe(100);
      expect(read.lastOffsetDelta).toBe(49);
      expect(read.attributes & 0x10).toBe(0x10);
      expect(read.firstTimestamp).toBe(1_700_000_000_000n);
      expect(read.records).toHaveLength(50);
      read.records.forEach((r, i) => {
        expect(r.offsetDelta).toBe(i);
        expect(r.key!.toString()).toBe(recs[i]!.key.toString());
        expect(r.value!.toString()).toBe(recs[i]!.value.toString());
        expect(r.headers.map(([k, v]) => [k!.toString(), v!.toString()])).toEqual(recs[i]!.headers);
      });
      // the broker checks a CRC32C of attributes..end (here by the client's plain-JS CRC32C)
      expect(batch.readUInt32BE(17)).toBe(jsCRC32C(batch.subarray(21)));
    },
  );

  it('counts sequences per partition and starts again for a new producer epoch', () => {
    const s = new Sequences();
    expect(s.take(1n, 0, 't', 0, 10)).toBe(0);
    expect(s.take(1n, 0, 't', 0, 5)).toBe(10);
    expect(s.take(1n, 0, 't', 1, 5)).toBe(0);
    expect(s.take(1n, 0, 'u', 0, 5)).toBe(0);
    expect(s.take(1n, 1, 't', 0, 5)).toBe(0);
    expect(s.take(2n, 1, 't', 0, 5)).toBe(0);
    expect(nextSequence(0x7fffffff - 2, 5)).toBe(2);
  });
});
