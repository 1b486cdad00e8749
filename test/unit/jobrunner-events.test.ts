import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import {
  finalEventFrom,
  foldEvents,
  queueOfType,
  serializeError,
  type FsaEvent,
} from '../../src/jobrunner/events.ts';

const I = (payload: unknown = { a: 1 }): FsaEvent => ({ type: 'q:INITIAL', payload });
const F = (payload: unknown = 'ok'): FsaEvent => ({ type: 'q:FINAL', payload });
const E = (message = 'boom'): FsaEvent => ({ type: 'q:ERROR', payload: { message }, error: true });
const P = (type: string, payload: unknown): FsaEvent => ({ type: `q:${type}`, payload });

describe('foldEvents: a task state rebuilt from its events', () => {
  it('is EMPTY without events', () => {
    expect(foldEvents([])).toMatchObject({ status: 'EMPTY', eventCount: 0, errors: 0 });
  });

  it('INITIAL opens, progress keeps the latest payload per type, FINAL finishes', () => {
    const s = foldEvents([I(), P('STEP', { step: 1 }), P('STEP', { step: 2 }), P('NOTE', 'x'), F({ n: 2 })]);
    expect(s).toMatchObject({
      status: 'DONE',
      queue: 'q',
      initial: I(),
      final: F({ n: 2 }),
      latest: { 'q:STEP': { step: 2 }, 'q:NOTE': 'x' },
      eventCount: 5,
    });
    expect(s.progress).toHaveLength(3);
    expect(s.invalid).toBeUndefined();
  });

  it('an error event sets ERROR; a later event (a retry) reopens; errors are counted', () => {
    expect(foldEvents([I(), E()]).status).toBe('ERROR');
    const s = foldEvents([I(), E('one'), P('STEP', 1), E('two'), P('STEP', 2)]);
    expect(s).toMatchObject({ status: 'OPEN', errors: 2, lastError: E('two'), latest: { 'q:STEP': 2 } });
    expect(foldEvents([I(), E(), F()]).status).toBe('DONE');
  });

  it('flags what the database would refuse', () => {
    expect(foldEvents([F()]).invalid).toMatch(/first event/);
    expect(foldEvents([I(), I()]).invalid).toMatch(/second :INITIAL/);
    expect(foldEvents([I(), F(), P('STEP', 1)]).invalid).toMatch(/after :FINAL/);
    expect(foldEvents([I(), { type: 'other:FINAL' }]).invalid).toMatch(/bad final/);
    expect(foldEvents([I(), { type: 'q:FINAL', error: true }]).invalid).toMatch(/bad final/);
    expect(foldEvents([{ type: 'q:INITIAL', error: true }]).invalid).toMatch(/first event/);
  });

  it('property: a valid history ends DONE iff it ends with FINAL; status matches the last event', () => {
    const middle = fc.array(
      fc.oneof(
        fc.integer().map((n) => P('STEP', n)),
        fc.string().map((m) => E(m)),
      ),
      { maxLength: 30 },
    );
    fc.assert(
      fc.property(middle, fc.boolean(), (events, finished) => {
        const all = [I(), ...events, ...(finished ? [F()] : [])];
        const s = foldEvents(all);
        expect(s.invalid).toBeUndefined();
        expect(s.eventCount).toBe(all.length);
        expect(s.errors).toBe(events.filter((e) => e.error).length);
        const last = all[all.length - 1]!;
        expect(s.status).toBe(finished ? 'DONE' : last.error ? 'ERROR' : 'OPEN');
        // the fold is a left fold: folding a prefix then the rest equals folding it all
        const k = Math.floor(all.length / 2);
        expect(foldEvents(all)).toEqual(foldEvents([...all.slice(0, k), ...all.slice(k)]));
      }),
    );
  });
});

describe('finalEventFrom: what a worker returned becomes its :FINAL', () => {
  it('wraps a payload', () => {
    expect(finalEventFrom('q', { n: 1 }, false)).toEqual({ type: 'q:FINAL', payload: { n: 1 } });
    expect(finalEventFrom('q', undefined, false)).toEqual({ type: 'q:FINAL', payload: null });
    expect(finalEventFrom('q', 42, false)).toEqual({ type: 'q:FINAL', payload: 42 });
  });
  it('takes a returned :FINAL event as it is', () => {
    expect(finalEventFrom('q', { type: 'q:FINAL', payload: 1, meta: { m: 1 } }, false)).toEqual({
      type: 'q:FINAL',
      payload: 1,
      meta: { m: 1 },
    });
  });
  it('an object with another type is a payload, not an event', () => {
    expect(finalEventFrom('q', { type: 'other' }, false)).toEqual({
      type: 'q:FINAL',
      payload: { type: 'other' },
    });
  });
  it('nothing when the worker already dispatched its :FINAL', () => {
    expect(finalEventFrom('q', { n: 1 }, true)).toBeUndefined();
  });
});

describe('helpers', () => {
  it('queueOfType', () => {
    expect(queueOfType('a/b.c:INITIAL')).toBe('a/b.c');
    expect(queueOfType('x:y:FINAL')).toBe('x:y');
    expect(queueOfType('plain')).toBeUndefined();
  });
  it('serializeError keeps name, message, code', () => {
    const err = Object.assign(new TypeError('bad'), { code: 'E_BAD' });
    expect(serializeError(err)).toMatchObject({ name: 'TypeError', message: 'bad', code: 'E_BAD' });
    expect(serializeError('text')).toEqual({ name: 'Error', message: 'text' });
  });
});
