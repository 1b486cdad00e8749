import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import {
  admit,
  canTransition,
  JOB_KINDS,
  JOB_STATUSES,
  nextCronTime,
  parseCron,
  transition,
  type ChronologyOptions,
  type RunFacts,
} from '../../src/startjob/chronology.ts';

const opts: ChronologyOptions = { enableHealing: true, enableDump: true, healMustWaitForInitialSync: true };
const synced: RunFacts = { kind: 'initial-sync', status: 'success' };

describe('start-job chronology rules', () => {
  it('refuses healing before a successful initial sync', () => {
    expect(admit('healing', [], opts)).toMatchObject({ ok: false, code: 'needs-initial-sync' });
    expect(admit('healing', [{ kind: 'initial-sync', status: 'failed' }], opts)).toMatchObject({
      ok: false,
      code: 'needs-initial-sync',
    });
    expect(admit('healing', [{ kind: 'initial-sync', status: 'canceled' }], opts)).toMatchObject({
      ok: false,
    });
    expect(admit('healing', [synced], opts)).toEqual({ ok: true });
  });

  it('lets healing run without an initial sync when HEAL_MUST_WAIT_FOR_INITIAL_SYNC=false', () => {
    expect(admit('healing', [], { ...opts, healMustWaitForInitialSync: false })).toEqual({ ok: true });
  });

  it('never overlaps two runs of one kind', () => {
    for (const kind of JOB_KINDS)
      for (const status of ['scheduled', 'busy'] as const)
        expect(admit(kind, [synced, { kind, status }], opts)).toMatchObject({ ok: false, code: 'overlap' });
    for (const kind of JOB_KINDS)
      for (const status of ['success', 'failed', 'canceled'] as const)
        expect(admit(kind, [synced, { kind, status }], opts)).toEqual({ ok: true });
  });

  it('keeps the two store writers apart; dump runs beside either', () => {
    expect(admit('healing', [synced, { kind: 'initial-sync', status: 'busy' }], opts)).toMatchObject({
      code: 'store-busy',
    });
    expect(admit('initial-sync', [synced, { kind: 'healing', status: 'busy' }], opts)).toMatchObject({
      code: 'store-busy',
    });
    expect(
      admit(
        'dump',
        [
          { kind: 'healing', status: 'busy' },
          { kind: 'initial-sync', status: 'busy' },
        ],
        opts,
      ),
    ).toEqual({ ok: true });
  });

  it('refuses disabled kinds', () => {
    expect(admit('healing', [synced], { ...opts, enableHealing: false })).toMatchObject({ code: 'disabled' });
    expect(admit('dump', [], { ...opts, enableDump: false })).toMatchObject({ code: 'disabled' });
    expect(admit('initial-sync', [], { ...opts, enableHealing: false, enableDump: false })).toEqual({
      ok: true,
    });
  });

  it('property: an admitted run never overlaps an active run of its kind, and healing implies a synced store', () => {
    const fact = fc.record({ kind: fc.constantFrom(...JOB_KINDS), status: fc.constantFrom(...JOB_STATUSES) });
    fc.assert(
      fc.property(
        fc.array(fact, { maxLength: 8 }),
        fc.constantFrom(...JOB_KINDS),
        fc.boolean(),
        (runs, kind, wait) => {
          const v = admit(kind, runs, { ...opts, healMustWaitForInitialSync: wait });
          if (!v.ok) return;
          expect(runs.some((r) => r.kind === kind && (r.status === 'busy' || r.status === 'scheduled'))).toBe(
            false,
          );
          if (kind === 'healing' && wait)
            expect(runs.some((r) => r.kind === 'initial-sync' && r.status === 'success')).toBe(true);
        },
      ),
    );
  });

  it('status machine: scheduled → busy → success|failed|canceled, final states stay final', () => {
    expect(transition('scheduled', 'busy')).toBe('busy');
    expect(canTransition('busy', 'success')).toBe(true);
    expect(canTransition('scheduled', 'canceled')).toBe(true);
    expect(canTransition('scheduled', 'success')).toBe(false);
    for (const s of ['success', 'failed', 'canceled'] as const)
      for (const t of JOB_STATUSES) expect(canTransition(s, t)).toBe(false);
    expect(() => transition('success', 'busy')).toThrow('cannot go from success to busy');
  });

  it('cron: 6 fields (seconds first) and 5 fields, in UTC; bad patterns are named', () => {
    expect(nextCronTime('0 */30 * * * *', new Date('2024-01-01T00:10:00Z')).toISOString()).toBe(
      '2024-01-01T00:30:00.000Z',
    );
    expect(nextCronTime('0 */30 * * * *', new Date('2024-01-01T00:30:00Z')).toISOString()).toBe(
      '2024-01-01T01:00:00.000Z',
    );
    expect(nextCronTime('*/5 * * * * *', new Date('2024-01-01T00:00:01Z')).toISOString()).toBe(
      '2024-01-01T00:00:05.000Z',
    );
    expect(nextCronTime('0 3 * * *', new Date('2024-01-01T04:00:00Z')).toISOString()).toBe(
      '2024-01-02T03:00:00.000Z',
    );
    expect(() => parseCron('* * *')).toThrow('5 or 6 fields');
    expect(() => parseCron('0 99 * * * *')).toThrow('invalid cron pattern');
  });
});
