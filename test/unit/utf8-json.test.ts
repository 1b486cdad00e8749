import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { jsonStringFromUtf8, needsJsonEscape } from '../../src/extractor/decode/utf8-json.ts';

const escapesByte = (b: number) => b < 0x20 || b === 0x22 || b === 0x5c;

/** Text as it comes: plain, long (the word check), with escapes anywhere, any Unicode; or any bytes. */
const text = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 600 }),
  fc
    .tuple(
      fc.string({ maxLength: 700 }),
      fc.nat(700),
      fc.constantFrom('"', '\\', '\n', '\t', '\u0000', '\u001f', 'é', '\u007f', '\u2028'),
    )
    .map(([s, at, c]) => s.slice(0, at) + c + s.slice(at)),
  fc.constant('c4ca4238a0b923820dcc509a6f75849b'.repeat(60)),
);
const bytes = fc.oneof(
  text.map((s) => Buffer.from(s, 'utf8')),
  fc.uint8Array({ maxLength: 700 }).map((b) => Buffer.from(b)),
);

describe('jsonStringFromUtf8: JSON.stringify of a UTF-8 text in a buffer', () => {
  it('equals JSON.stringify of the decoded text, at any offset and alignment (property)', () => {
    fc.assert(
      fc.property(bytes, fc.nat(7), fc.nat(7), (value, before, after) => {
        // the value somewhere inside a bigger buffer, as a tuple value sits in a message
        const buf = Buffer.concat([Buffer.alloc(before, 0x22), value, Buffer.alloc(after, 0x5c)]);
        const end = before + value.length;
        expect(jsonStringFromUtf8(buf, before, end)).toBe(JSON.stringify(buf.toString('utf8', before, end)));
        expect(needsJsonEscape(buf, before, end)).toBe(value.some(escapesByte));
      }),
      { numRuns: 2000 },
    );
  });

  it('finds an escaped byte in every position of every word of a long text', () => {
    const plain = Buffer.from('x'.repeat(300));
    expect(needsJsonEscape(plain, 0, plain.length)).toBe(false);
    for (const c of [0x00, 0x09, 0x0a, 0x1f, 0x22, 0x5c])
      for (let at = 0; at < 8; at++) {
        const b = Buffer.from(plain);
        b[290 - at] = c;
        expect(needsJsonEscape(b, 1, b.length)).toBe(true);
        expect(needsJsonEscape(b, 1, 290 - at)).toBe(false);
      }
    // bytes next to the matching ones that must not match (the borrow of the word trick)
    for (const c of [0x20, 0x21, 0x23, 0x5b, 0x5d, 0x7f, 0x80, 0xa2, 0xdc, 0xff]) {
      const b = Buffer.from(plain);
      b.fill(c, 100, 108);
      expect(needsJsonEscape(b, 0, b.length)).toBe(false);
    }
  });
});
