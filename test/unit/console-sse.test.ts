import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { parseSseFrame, takeFrames } from '../../console/src/sse.ts';

describe("the console's SSE framing (console/src/sse.ts)", () => {
  it('parses id, event and data; skips comments and pings', () => {
    expect(parseSseFrame('id: 0/16B3748/3\ndata: {"a":1}')).toEqual({
      id: '0/16B3748/3',
      event: 'message',
      data: '{"a":1}',
    });
    expect(parseSseFrame('event: error\ndata: {"error":"slow_client"}')).toEqual({
      event: 'error',
      data: '{"error":"slow_client"}',
    });
    expect(parseSseFrame(': ping')).toBeNull();
    expect(parseSseFrame('data: a\ndata: b')).toMatchObject({ data: 'a\nb' });
    expect(parseSseFrame('data:no-space')).toMatchObject({ data: 'no-space' });
  });

  it('yields the same messages however the stream is cut into chunks', () => {
    const message = fc.record({
      id: fc.stringMatching(/^[0-9A-F]{1,8}\/[0-9A-F]{1,8}\/[0-9]{1,3}$/),
      data: fc.json().map((j) => j.replace(/\n/g, ' ')),
    });
    fc.assert(
      fc.property(fc.array(message, { maxLength: 20 }), fc.array(fc.nat(), { maxLength: 30 }), (ms, cuts) => {
        const wire =
          ': tag-connector stream\n\n' + ms.map((m) => `id: ${m.id}\ndata: ${m.data}\n\n`).join('');
        const points = [...new Set(cuts.map((c) => c % (wire.length + 1)))].sort((a, b) => a - b);
        const chunks: string[] = [];
        let at = 0;
        for (const p of [...points, wire.length]) {
          chunks.push(wire.slice(at, p));
          at = p;
        }
        let buffer = '';
        const got: unknown[] = [];
        for (const chunk of chunks) {
          const { frames, rest } = takeFrames(buffer + chunk);
          buffer = rest;
          for (const f of frames) {
            const m = parseSseFrame(f);
            if (m) got.push({ id: m.id, data: m.data });
          }
        }
        expect(buffer).toBe('');
        expect(got).toEqual(ms.map((m) => ({ id: m.id, data: m.data })));
      }),
    );
  });
});
