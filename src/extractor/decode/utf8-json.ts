import { jsonString } from './row-json.ts';

/**
 * `JSON.stringify` of the UTF-8 text `buf[start, end)` (a pgoutput text value), quoted directly when
 * nothing in it needs escaping. Short texts go to jsonString (a native regular expression on the
 * decoded string). A long one (a document, a TOASTed text of kilobytes) is checked on its bytes, four
 * at a time, before it is decoded: JSON.stringify of a 2 KB text costs its scan plus a copy, and was
 * the largest single cost of decoding a wide pgoutput row; the word check costs a fraction of that and
 * the quoted result is a rope, not a copy.
 *
 * Exact: JSON.stringify escapes `"`, `\`, the control characters U+0000–U+001F and lone surrogates.
 * The first three come only from the bytes 0x22, 0x5C and 0x00–0x1F (UTF-8 never encodes an ASCII
 * character any other way), and decoding UTF-8 never yields a lone surrogate (an ill-formed sequence
 * becomes U+FFFD). So a text without those bytes is its own JSON string body.
 */
export function jsonStringFromUtf8(buf: Buffer, start: number, end: number): string {
  const text = buf.toString('utf8', start, end);
  if (end - start <= LONG) return jsonString(text);
  return needsJsonEscape(buf, start, end) ? JSON.stringify(text) : '"' + text + '"';
}

/** From this length on, the byte check beats the regular expression and JSON.stringify. */
const LONG = 256;

let words: Int32Array | undefined;
let wordsOf: ArrayBufferLike | undefined;

/** Whether `buf[start, end)` holds a byte JSON escapes: 0x00–0x1F, `"` (0x22) or `\` (0x5C). */
export function needsJsonEscape(buf: Buffer, start: number, end: number): boolean {
  const base = buf.byteOffset;
  let i = start;
  // bytes up to a 4-byte boundary of the underlying memory, then whole words
  while (i < end && ((base + i) & 3) !== 0) if (escapes(buf[i++]!)) return true;
  const count = (end - i) >> 2;
  if (count > 0) {
    if (wordsOf !== buf.buffer) {
      // one view per underlying buffer (the protocol parser's, reused for many messages)
      wordsOf = buf.buffer;
      words = new Int32Array(wordsOf, 0, wordsOf.byteLength >> 2);
    }
    const w = words!;
    let k = (base + i) >> 2;
    const last = k + count;
    for (; k < last; k++) {
      const x = w[k]!;
      // The classic "has a byte less than n / equal to n" tests: a byte's high bit is set in the
      // result only when that byte (or one below it, already a match) qualifies; bytes of 0x80 and up
      // (UTF-8 sequences) never do.
      const q = x ^ 0x22222222;
      const b = x ^ 0x5c5c5c5c;
      const hits =
        (((x - 0x20202020) | 0) & ~x) | (((q - 0x01010101) | 0) & ~q) | (((b - 0x01010101) | 0) & ~b);
      if ((hits & 0x80808080) !== 0) return true;
    }
    i += count << 2;
  }
  while (i < end) if (escapes(buf[i++]!)) return true;
  return false;
}

function escapes(c: number): boolean {
  return c < 0x20 || c === 0x22 || c === 0x5c;
}
