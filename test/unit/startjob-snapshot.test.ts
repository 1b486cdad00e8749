import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { applyEnvAliases } from '../../src/startjob/aliases.ts';
import { loadConfig } from '../../src/config/index.ts';
import { SnapshotEvents } from '../../src/startjob/events.ts';
import { canonicalJson, contentHash } from '../../src/startjob/hash.ts';
import { classifyItem, mergeClassify, type Classified } from '../../src/startjob/snapshot.ts';

const staged = (id: string, hash = `h-${id}`) => ({ _id: id, hash, doc: { id } });
async function all(gen: AsyncIterable<Classified>) {
  const out: [string, string][] = [];
  for await (const c of gen) out.push([c.id, c.change]);
  return out;
}

describe('snapshot diff (pure)', () => {
  it('hashes content independent of key order', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: null } })).toBe(
      '{"a":{"c":null,"d":[1,{"y":2,"z":1}]},"b":1}',
    );
    expect(contentHash({ a: 1, b: 2 })).toBe(contentHash({ b: 2, a: 1 }));
    expect(contentHash({ a: 1 })).not.toBe(contentHash({ a: 2 }));
  });

  it('classifies one item', () => {
    expect(classifyItem(undefined, 'x')).toBe('created');
    expect(classifyItem('x', 'x')).toBe('unchanged');
    expect(classifyItem('x', 'y')).toBe('changed');
  });

  it('merges two id-ordered streams', async () => {
    const fresh = [staged('a'), staged('b', 'new'), staged('d'), staged('e')];
    const stored = [staged('b'), staged('c'), staged('d'), staged('f')];
    expect(await all(mergeClassify(fresh, stored))).toEqual([
      ['a', 'created'],
      ['b', 'changed'],
      ['c', 'deleted'],
      ['d', 'unchanged'],
      ['e', 'created'],
      ['f', 'deleted'],
    ]);
  });

  it('refuses a stream out of id order', async () => {
    await expect(all(mergeClassify([staged('b'), staged('a')], []))).rejects.toThrow('not in id order');
  });

  it('property: the merge equals the set difference', async () => {
    const map = fc.dictionary(fc.stringMatching(/^[a-z0-9]{1,6}$/), fc.constantFrom('h1', 'h2'), {
      maxKeys: 40,
    });
    await fc.assert(
      fc.asyncProperty(map, map, async (now, before) => {
        const sorted = (m: Record<string, string>) =>
          Object.keys(m)
            .sort()
            .map((k) => staged(k, m[k]));
        const got = new Map(await all(mergeClassify(sorted(now), sorted(before))));
        for (const k of new Set([...Object.keys(now), ...Object.keys(before)])) {
          const want = !(k in before)
            ? 'created'
            : !(k in now)
              ? 'deleted'
              : now[k] === before[k]
                ? 'unchanged'
                : 'changed';
          expect(got.get(k)).toBe(want);
        }
      }),
    );
  });

  it('event ids are stable per snapshot and item', () => {
    const ev = new SnapshotEvents({ source: '/s', now: () => new Date(0) });
    const a = ev.item('snap-1', 'changed', 'item-1', { hash: 'h', item: {} });
    const b = ev.item('snap-1', 'changed', 'item-1', { hash: 'h', item: {} });
    expect(a.id).toBe('snap-1/item-1');
    expect(b).toEqual(a);
    expect(a).toMatchObject({
      specversion: '1.0',
      type: 'snapshot.item_changed',
      subject: 'items/item-1',
      partitionkey: 'item-1',
    });
    expect(ev.run('snap-1', 'snapshot.completed', {}).id).toBe('snap-1/completed');
  });

  it('accepts the seed env names as aliases; TAG_CONNECTOR_* wins', () => {
    const env: NodeJS.ProcessEnv = {
      START_INITIAL_SYNC: 'true',
      CRON_PATTERN_HEALING_JOB: '0 */5 * * * *',
      ENABLE_DUMP_FILE_CREATION: 'yes',
      HEAL_MUST_WAIT_FOR_INITIAL_SYNC: 'false',
      ENABLE_HEALING_JOB_OPERATION: 'false',
      CRON_PATTERN_DUMP_JOB: '0 0 1 * * *',
      TAG_CONNECTOR_CRON_PATTERN_DUMP_JOB: '0 0 2 * * *',
    };
    expect(applyEnvAliases(env).sort()).toEqual(
      [
        'ENABLE_DUMP_FILE_CREATION',
        'ENABLE_HEALING_JOB_OPERATION',
        'HEAL_MUST_WAIT_FOR_INITIAL_SYNC',
        'CRON_PATTERN_HEALING_JOB',
        'START_INITIAL_SYNC',
      ].sort(),
    );
    const c = loadConfig({ env });
    expect(c).toMatchObject({
      startInitialSync: true,
      cronPatternHealingJob: '0 */5 * * * *',
      cronPatternDumpJob: '0 0 2 * * *',
      enableDumpFileCreation: true,
      enableHealingJobOperation: false,
      healMustWaitForInitialSync: false,
    });
    expect(loadConfig({ env: {} })).toMatchObject({
      startInitialSync: false,
      cronPatternHealingJob: '0 */30 * * * *',
      healMustWaitForInitialSync: true,
      wsPaging: 'cursor',
    });
  });
});
