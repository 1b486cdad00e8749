import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { LeaderLock } from '../../src/extractor/replication/leader-lock.ts';
import { createLogger } from '../../src/log.ts';
import { FaultProxy } from '../../soak/proxy.ts';
import { testDatabase } from '../support/db.ts';

/**
 * The leader lock under a half-open network (found by the fault soak, docs/soak.md): the leader's link
 * to PostgreSQL is blackholed (no FIN, no RST, bytes vanish). PostgreSQL must end the leader's session
 * so that the standby can take over, and the leader must give the lock up before that, so that two
 * daemons never both believe they lead. Before the fix the idle lock session lived on (the server's
 * TCP keepalives default to two hours and a proxy, or a NAT, answers them anyway): no takeover at all.
 */
describe('leader lock: the leader loses its network (blackhole)', () => {
  let db: { url: string; drop: () => Promise<void> };
  beforeAll(async () => {
    db = await testDatabase('lockpart');
  });
  afterAll(async () => {
    await db.drop();
  });

  it('the leader gives the lock up, then the server ends its session and the standby takes over', async () => {
    const u = new URL(db.url);
    const proxy = await new FaultProxy('leader', { host: u.hostname, port: Number(u.port) }).start();
    const viaProxy = new URL(db.url);
    viaProxy.port = String(proxy.port);
    const logger = createLogger('silent');
    const leader = new LeaderLock({ connectionString: viaProxy.toString() }, 'part', logger, 500);
    const standby = new LeaderLock({ connectionString: db.url }, 'part', logger, 500);
    try {
      expect(await leader.acquire()).toBe(true);
      let lostAt = 0;
      leader.onLost = () => (lostAt = Date.now());
      let waiting = false;
      const takeover = standby.acquire(() => (waiting = true));
      await new Promise((r) => setTimeout(r, 1500));
      expect(waiting).toBe(true);

      const cutAt = Date.now();
      proxy.blackhole();
      let timer: NodeJS.Timeout | undefined;
      const won = await Promise.race([
        takeover,
        new Promise<false>((r) => (timer = setTimeout(() => r(false), 30_000))),
      ]);
      clearTimeout(timer);
      const tookOverAt = Date.now();
      expect(won).toBe(true);
      // the leader fenced itself first
      expect(lostAt).toBeGreaterThan(cutAt);
      expect(lostAt).toBeLessThan(tookOverAt);
      expect(tookOverAt - cutAt).toBeLessThan(30_000);
    } finally {
      proxy.heal();
      await leader.release();
      await standby.release();
      await proxy.stop();
    }
  }, 60_000);
});
