import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import type { CloudEvent } from '../../src/events/envelope.ts';
import { formatReport, StreamVerifier } from '../../src/events/verify.ts';
import { makeEvent } from '../support/events.ts';

const ev = (i: number, opts?: Parameters<typeof makeEvent>[1]): CloudEvent => makeEvent(i, opts).event;

describe('StreamVerifier', () => {
  it('accepts a clean stream', () => {
    const v = new StreamVerifier();
    for (let i = 0; i < 50; i++) expect(v.add(ev(i))).toEqual([]);
    const r = v.report();
    expect(r).toMatchObject({
      events: 50,
      unique: 50,
      keys: 7,
      duplicates: 0,
      outOfOrder: 0,
      gaps: 0,
      ok: true,
    });
    expect(formatReport(r)).toContain('OK');
  });

  it('counts duplicates (redelivery after a crash)', () => {
    const v = new StreamVerifier();
    for (let i = 0; i < 10; i++) v.add(ev(i));
    for (let i = 5; i < 12; i++) v.add(ev(i));
    const r = v.report();
    expect(r.duplicates).toBe(5);
    expect(r.unique).toBe(12);
    expect(r.ok).toBe(false);
    expect(r.issues[0]).toMatchObject({ kind: 'duplicate', id: ev(5).id });
  });

  it('reports an older event of the same key as out of order, not other keys', () => {
    const v = new StreamVerifier();
    v.add(ev(7)); // k0
    v.add(ev(1)); // k1: other key, fine
    expect(v.add(ev(0))).toEqual([expect.objectContaining({ kind: 'out_of_order', key: 'k0' })]);
    expect(v.report().outOfOrder).toBe(1);
  });

  it('reports a broken row chain as a gap', () => {
    const v = new StreamVerifier();
    v.add(ev(0)); // k0 n=0
    // ev(14) is k0 with before.n = 7, but the last after.n of k0 was 0: ev(7) is missing
    expect(v.add(ev(14))[0]).toMatchObject({ kind: 'gap', key: 'k0' });
  });

  it('reports expected ids never received as gaps', () => {
    const v = new StreamVerifier();
    v.add(ev(0));
    const r = v.report([ev(0).id, ev(1).id]);
    expect(r.gaps).toBe(1);
    expect(r.issues).toContainEqual(expect.objectContaining({ kind: 'gap', id: ev(1).id }));
  });

  it('finds no issue in any interleaving that keeps per-key order, and every duplicate', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 6 }), { minLength: 1, maxLength: 80 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        (pickKeys, dupPicks) => {
          // per key k the events k, k+7, k+14, ... in order; consecutive per key so the chain holds
          const next = new Map<number, number>();
          const stream: CloudEvent[] = [];
          for (const k of pickKeys) {
            const n = next.get(k) ?? 0;
            next.set(k, n + 1);
            const e = ev(k + 7 * n, { keys: 7 });
            (e.data as { before: unknown }).before = n === 0 ? null : { id: `k${k}`, n: k + 7 * (n - 1) };
            stream.push(e);
          }
          const v = new StreamVerifier();
          for (const e of stream) v.add(e);
          for (const d of dupPicks) v.add(stream[d % stream.length]!);
          const r = v.report();
          return r.outOfOrder === 0 && r.gaps === 0 && r.duplicates === dupPicks.length;
        },
      ),
    );
  });
});
