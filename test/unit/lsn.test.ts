import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { comparePosition, formatLsn, formatPosition, parseEventId, parseLsn } from '../../src/util/lsn.ts';

describe('lsn', () => {
  it('parses and formats', () => {
    expect(parseLsn('0/16B3748')).toBe(0x16b3748n);
    expect(parseLsn('1/0')).toBe(1n << 32n);
    expect(formatLsn(0x1_0000_00ffn)).toBe('1/FF');
  });

  it('round-trips every 64-bit value', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), (n) => parseLsn(formatLsn(n)) === n),
    );
  });

  it('orders like the numbers across the 2^32 boundary', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
        fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
        (a, b) => parseLsn(formatLsn(a)) < parseLsn(formatLsn(b)) === a < b,
      ),
    );
  });

  it('rejects garbage with a clear message', () => {
    expect(() => parseLsn('16B3748')).toThrow(/expected X\/Y/);
    expect(() => parseLsn('0/XYZ')).toThrow(/not an LSN/);
  });

  it('event ids round-trip and order by (commitLsn, seq)', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.nat(), (lsn, seq) => {
        const p = { commitLsn: lsn, seq };
        const back = parseEventId(formatPosition(p));
        return back.commitLsn === lsn && back.seq === seq;
      }),
    );
    expect(comparePosition({ commitLsn: 5n, seq: 9 }, { commitLsn: 6n, seq: 0 })).toBeLessThan(0);
    expect(comparePosition({ commitLsn: 6n, seq: 2 }, { commitLsn: 6n, seq: 1 })).toBeGreaterThan(0);
  });
});
