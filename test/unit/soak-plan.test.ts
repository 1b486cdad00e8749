import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { HA_SETTLE_MS, INFRA_KINDS, planSchedule } from '../../soak/schedule.ts';
import { idBefore, tally, unread } from '../../soak/tally.ts';

describe('soak schedule', () => {
  it('is a function of the seed', () => {
    const a = planSchedule({ durationMs: 600_000, seed: 7 });
    expect(planSchedule({ durationMs: 600_000, seed: 7 })).toEqual(a);
    expect(planSchedule({ durationMs: 600_000, seed: 8 })).not.toEqual(a);
  });

  it('30 minutes: at least 100 SIGKILLs and every fault kind, several times', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 31 - 1 }), (seed) => {
        const s = planSchedule({ durationMs: 30 * 60_000, seed, haBlackholeMs: 30_000 });
        expect(s.kills.length).toBeGreaterThanOrEqual(100);
        for (const kind of INFRA_KINDS)
          expect(s.infra.filter((f) => f.kind === kind).length).toBeGreaterThanOrEqual(3);
      }),
      { numRuns: 50 },
    );
  });

  it('one infrastructure fault at a time, inside the run; no SIGKILL during a leader blackhole or the settling before it', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.integer({ min: 2, max: 40 }), (seed, min) => {
        const durationMs = min * 60_000;
        const s = planSchedule({ durationMs, seed });
        for (let i = 1; i < s.infra.length; i++)
          expect(s.infra[i]!.atMs).toBeGreaterThanOrEqual(s.infra[i - 1]!.atMs + s.infra[i - 1]!.durationMs);
        for (const f of s.infra) expect(f.atMs + f.durationMs).toBeLessThanOrEqual(durationMs);
        for (const k of s.kills) expect(k.atMs).toBeLessThanOrEqual(durationMs);
        for (const f of s.infra.filter((x) => x.kind === 'ha-blackhole'))
          for (const k of s.kills)
            expect(k.atMs < f.atMs - HA_SETTLE_MS || k.atMs > f.atMs + f.durationMs).toBe(true);
      }),
      { numRuns: 50 },
    );
  });

  it('a 3-minute run opens with the leader blackhole', () => {
    for (const seed of [1, 2, 3, 19]) {
      const s = planSchedule({ durationMs: 180_000, seed, haBlackholeMs: 30_000 });
      expect(s.infra[0]?.kind).toBe('ha-blackhole');
    }
  });
});

describe('soak tally', () => {
  it('orders ids by commit LSN, then seq', () => {
    expect(idBefore('0/16B3748/3', '0/16B3748/10')).toBe(true);
    expect(idBefore('0/16B3748/10', '0/16B3749/0')).toBe(true);
    expect(idBefore('0/FFFFFFFF/0', '1/0/0')).toBe(true);
    expect(idBefore('1/0/0', '1/0/0')).toBe(false);
  });

  it('counts lost, duplicated, foreign and out-of-order deliveries', () => {
    const want = ['0/10/0', '0/10/1', '0/20/0', '0/30/0'];
    const t = tally(want, [['0/10/0', '0/10/1', '0/10/1', '0/40/0', '0/20/0']], true);
    expect(t).toMatchObject({ delivered: 5, lost: 1, duplicated: 1, foreign: 1, orderBreaks: 2 });
    expect(t.examples.lost).toEqual(['0/30/0']);
    expect(t.examples.duplicated).toEqual(['0/10/1']);
    expect(t.examples.foreign).toEqual(['0/40/0']);
  });

  it('an unordered sink is judged on loss and duplicates only; streams are ordered each on its own', () => {
    const want = ['0/10/0', '0/20/0', '0/30/0'];
    expect(tally(want, [['0/30/0', '0/10/0', '0/20/0']], false).orderBreaks).toBe(0);
    const parts = tally(want, [['0/20/0', '0/30/0'], ['0/10/0']], true);
    expect(parts).toMatchObject({ delivered: 3, lost: 0, duplicated: 0, orderBreaks: 0 });
  });

  it('a reader that stopped before the end reports what it did not find as not read, never as lost', () => {
    const t = unread(tally(['0/10/0', '0/20/0', '0/30/0'], [['0/10/0', '0/10/0']], true));
    expect(t).toMatchObject({ delivered: 2, lost: 0, notRead: 2, duplicated: 1 });
  });
});
