import { describe, expect, it } from '@jest/globals';
import { ndjson, ndjsonBytes } from '../../src/sinks/ndjson.ts';
import { EncodedEvent, outboundEvent } from '../../src/sinks/sink.ts';
import { makeEvents } from '../support/events.ts';

describe('NDJSON bytes of a batch', () => {
  it('are the UTF-8 of the joined lines, for any text', () => {
    const plain = makeEvents(0, 5);
    const wide = plain.map((e, i) =>
      outboundEvent({ ...e.event, subject: `ключ/${i}/キー/😀` }, e.ordinal, e.position, e.table),
    );
    for (const batch of [plain, wide, [...plain, ...wide], plain.slice(0, 1)])
      expect(ndjsonBytes(batch).equals(Buffer.from(ndjson(batch), 'utf8'))).toBe(true);
    expect(ndjsonBytes([]).length).toBe(0);
  });

  it('reuses the bytes of the same batch (the file sink and the Stream retention write it in turn)', () => {
    const events = makeEvents(100, 10);
    const a = ndjsonBytes(events.slice(0, 4));
    expect(ndjsonBytes(events.slice(0, 4))).toBe(a); // another array of the same events
    const b = ndjsonBytes(events.slice(1, 5));
    expect(b).not.toBe(a);
    expect(b.equals(Buffer.from(ndjson(events.slice(1, 5))))).toBe(true);
  });

  it('refuses an event whose byte length is wrong rather than cut a line short', () => {
    const e = makeEvents(200, 1)[0]!;
    const wrong = new EncodedEvent(e.ordinal, e.position, e.json, e.table, e, e.bytes - 1);
    expect(() => ndjsonBytes([wrong])).toThrow(/bytes/);
  });
});
