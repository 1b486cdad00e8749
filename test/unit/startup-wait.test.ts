import { describe, expect, it } from '@jest/globals';
import pino from 'pino';
import { untilReachable } from '../../src/extractor/replication/startup.ts';

const logger = pino({ level: 'silent' });
const pgError = (code: string, message = code) => Object.assign(new Error(message), { code });

/** A step failing with `errors` in turn, then answering 'up'; counts its calls. */
function flaky(errors: Error[]) {
  let calls = 0;
  return {
    step: async () => {
      const err = errors[calls++];
      if (err) throw err;
      return 'up';
    },
    calls: () => calls,
  };
}

describe('start-up waits for an unreachable PostgreSQL (docs/connection-lifecycle.md)', () => {
  const fast = { logger, delayMs: () => 1, keepTrying: () => true };

  it('retries connection failures (refused, starting up, too many connections, shutdown) until through', async () => {
    const s = flaky([
      pgError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:5432'),
      pgError('57P03', 'the database system is starting up'),
      pgError('53300', 'sorry, too many clients already'),
      pgError('08006'),
      new Error('Connection terminated unexpectedly'),
    ]);
    const waiting: (string | undefined)[] = [];
    const out = await untilReachable(s.step, {
      ...fast,
      waitMs: 60_000,
      onWaiting: (err) => waiting.push(err?.message),
    });
    expect(out).toBe('up');
    expect(s.calls()).toBe(6);
    // Readiness sees each failure being waited out, and nothing once through.
    expect(waiting.at(-1)).toBeUndefined();
    expect(waiting.slice(0, 5)).toEqual([
      'connect ECONNREFUSED 127.0.0.1:5432',
      'the database system is starting up',
      'sorry, too many clients already',
      '08006',
      'Connection terminated unexpectedly',
    ]);
  });

  it('refused credentials, a wrong wal_level or missing privileges fail at once', async () => {
    for (const err of [
      pgError('28P01', 'password authentication failed for user "x"'),
      pgError('28000', 'no pg_hba.conf entry'),
      pgError('E_WAL_LEVEL', 'wal_level is replica'),
      pgError('42501', 'permission denied'),
    ]) {
      const s = flaky([err]);
      await expect(untilReachable(s.step, { ...fast, waitMs: 60_000 })).rejects.toBe(err);
      expect(s.calls()).toBe(1);
    }
  });

  it('gives up with the last error once --startup-wait-ms has passed; 0 = at once', async () => {
    const refused = pgError('ECONNREFUSED');
    for (const [waitMs, attempts] of [
      [1000, 4], // failures at 400 (the wait starts), 800, 1200 (200 ms left), 1600 (past): 4
      [0, 1],
    ] as const) {
      let clock = 0;
      let calls = 0;
      const always = async () => {
        calls++;
        clock += 400;
        throw refused;
      };
      await expect(untilReachable(always, { ...fast, waitMs, now: () => clock })).rejects.toBe(refused);
      expect(calls).toBe(attempts);
    }
  });

  it('ends the wait when the daemon stops', async () => {
    let stopping = false;
    const refused = pgError('ECONNREFUSED');
    const s = {
      calls: 0,
      step: async () => {
        s.calls++;
        stopping = s.calls >= 2;
        throw refused;
      },
    };
    await expect(
      untilReachable(s.step, { logger, waitMs: 60_000, delayMs: () => 1, keepTrying: () => !stopping }),
    ).rejects.toBe(refused);
    expect(s.calls).toBe(2);
  });
});
