import { describe, expect, it } from '@jest/globals';
import { jsonString } from '../../src/extractor/decode/row-json.ts';

describe('jsonString', () => {
  it('is JSON.stringify for any string, escapes and lone surrogates included', () => {
    const samples = [
      '',
      'public.tasks/1',
      'a"b',
      'back\\slash',
      'tab\there',
      'nl\n',
      '\u0000\u001f',
      'ключ/キー',
      '😀 pair',
      'lone \ud800 high',
      'lone \udc00 low',
      '\u007f\u0080\u00ff\u2028\u2029',
    ];
    for (const s of samples) expect(jsonString(s)).toBe(JSON.stringify(s));
    for (let c = 0; c < 0x10000; c += 7) {
      const s = `x${String.fromCharCode(c)}y`;
      expect(jsonString(s)).toBe(JSON.stringify(s));
    }
  });
});
