import { describe, expect, it } from '@jest/globals';
import type { RecordsBatch } from '@platformatic/kafka';
import { decodeMessage, encodeEvent } from '../../src/sinks/encode.ts';
import {
  checkpointValue,
  committedRecords,
  parseCheckpointValue,
  transactionalIdFor,
} from '../../src/sinks/kafka/index.ts';
import { routedTopics, topicRouter } from '../../src/sinks/route.ts';
import { outboundEvent } from '../../src/sinks/sink.ts';
import { makeEvent } from '../support/events.ts';

describe('encodeEvent / decodeMessage', () => {
  const e = makeEvent(11);
  it('structured: the CloudEvent JSON, ce_* headers beside it', () => {
    const m = encodeEvent(e, 'structured', 'db', '1.0.0');
    expect(m.value).toBe(e.json);
    expect(m.headers['content-type']).toMatch(/^application\/cloudevents\+json/);
    expect(m.headers.ce_id).toBe(e.event.id);
    expect(decodeMessage(m.headers, m.value)).toEqual(e.event);
  });
  it('binary: ce_* headers and the data', () => {
    const m = encodeEvent(e, 'binary', 'db', '1.0.0');
    expect(JSON.parse(m.value)).toEqual(e.event.data);
    expect(m.headers).toMatchObject({ ce_id: e.event.id, ce_type: 'task.updated', ce_partitionkey: 'k4' });
    expect(decodeMessage(m.headers, m.value)).toEqual(e.event);
  });
  it('debezium: before/after/op/source', () => {
    const m = encodeEvent(e, 'debezium', 'db', '1.0.0');
    const v = JSON.parse(m.value);
    expect(v).toMatchObject({
      op: 'u',
      before: { id: 'k4', n: 4 },
      after: { id: 'k4', n: 11 },
      source: { connector: 'postgresql', db: 'db', schema: 'public', table: 'tasks', txId: e.event.xid },
    });
    expect(m.headers.tagc_envelope).toBe('debezium');
    expect(decodeMessage(m.headers, m.value).id).toBe(e.event.id);
  });
  it('rejects what is no CloudEvent', () => {
    expect(() => decodeMessage({}, '{"a":1}')).toThrow(/not a CloudEvent/);
  });
});

describe('topicRouter', () => {
  const routes = { 'task.created': 'created', 'public.tasks': 'tasks', 'task.*': 'task-any', 'etl_*': 'etl' };
  const route = topicRouter(routes, 'default');
  const withType = (type: string, table = 'public.other') => {
    const e = makeEvent(0);
    return outboundEvent({ ...e.event, type }, e.ordinal, e.position, table);
  };
  it('exact type, then table, then longest prefix, then default', () => {
    expect(route(withType('task.created', 'public.tasks'))).toBe('created');
    expect(route(withType('task.updated', 'public.tasks'))).toBe('tasks');
    expect(route(withType('task.deleted'))).toBe('task-any');
    expect(route(withType('etl_context.event'))).toBe('etl');
    expect(route(withType('row.insert'))).toBe('default');
    expect(routedTopics(routes, 'default').sort()).toEqual([
      'created',
      'default',
      'etl',
      'task-any',
      'tasks',
    ]);
  });
});

describe('kafka checkpoint', () => {
  it('round-trips a position and derives a stable transactional id', () => {
    const p = { commitLsn: 0x1_0000_0010n, seq: 7 };
    expect(parseCheckpointValue(JSON.stringify(checkpointValue('slot', p)))).toEqual(p);
    expect(transactionalIdFor('tag-connector', 'slot_a')).toBe('tag-connector.slot_a');
    expect(() => parseCheckpointValue('{"x":1}')).toThrow(/bad checkpoint/);
  });
});

describe('committedRecords (read_committed filtering)', () => {
  const rec = (offsetDelta: number, key: string) => ({
    length: 0,
    attributes: 0,
    timestampDelta: 0n,
    offsetDelta,
    key: Buffer.from(key),
    value: Buffer.from(key),
    headers: [],
  });
  const data = (firstOffset: bigint, producerId: bigint, keys: string[]): RecordsBatch => ({
    firstOffset,
    length: 0,
    partitionLeaderEpoch: 0,
    magic: 2,
    crc: 0,
    attributes: 1 << 4,
    lastOffsetDelta: keys.length - 1,
    firstTimestamp: 0n,
    maxTimestamp: 0n,
    producerId,
    producerEpoch: 0,
    firstSequence: 0,
    records: keys.map((k, i) => rec(i, k)),
  });
  const marker = (offset: bigint, producerId: bigint, commit: boolean): RecordsBatch => {
    const key = Buffer.alloc(4);
    key.writeInt16BE(0, 0);
    key.writeInt16BE(commit ? 1 : 0, 2);
    return {
      ...data(offset, producerId, ['m']),
      attributes: (1 << 4) | (1 << 5),
      records: [{ ...rec(0, 'm'), key }],
    };
  };
  const keys = (r: ReturnType<typeof committedRecords>) => r.map((x) => x.record.key!.toString());

  it('drops every aborted transaction of one producer, keeps the committed ones', () => {
    const batches = [
      data(0n, 1n, ['a1', 'a2']),
      marker(2n, 1n, true),
      data(3n, 1n, ['x1']),
      marker(4n, 1n, false),
      data(5n, 1n, ['y1', 'y2']),
      marker(7n, 1n, false),
      data(8n, 1n, ['b1']),
      marker(9n, 1n, true),
    ];
    const aborted = [
      { producerId: 1n, firstOffset: 3n },
      { producerId: 1n, firstOffset: 5n },
    ];
    expect(keys(committedRecords(batches, aborted))).toEqual(['a1', 'a2', 'b1']);
    expect(committedRecords(batches, aborted).map((r) => r.offset)).toEqual([0n, 1n, 8n]);
  });

  it('keeps other producers interleaved with an aborted one', () => {
    const batches = [
      data(0n, 1n, ['x']),
      data(1n, 2n, ['keep']),
      marker(2n, 1n, false),
      marker(3n, 2n, true),
    ];
    expect(keys(committedRecords(batches, [{ producerId: 1n, firstOffset: 0n }]))).toEqual(['keep']);
  });
});
