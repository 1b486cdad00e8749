import { describe, expect, it } from '@jest/globals';
import pino from 'pino';
import { Connection, type ConnectionOptions } from '../../src/extractor/replication/connection.ts';
import type {
  ReplicationSource,
  SourceHandlers,
} from '../../src/extractor/replication/replication-source.ts';
import { ConnectorError } from '../../src/errors.ts';

const logger = pino({ level: 'silent' });

/**
 * A scripted source. `fail` makes start() fail the way PgReplicationSource does: the start promise
 * rejects AND onClose reports the same error (the double report that once started a second loop).
 * `closeWhileStarting` reports the close only (start never settles on its own).
 */
class FakeSource implements ReplicationSource {
  static live = new Set<FakeSource>();
  h?: SourceHandlers;
  stopped = false;
  paused = false;
  readonly sent: bigint[] = [];
  private readonly fail?: Error;
  private readonly closeWhileStarting: boolean;
  constructor(fail?: Error, closeWhileStarting = false) {
    this.fail = fail;
    this.closeWhileStarting = closeWhileStarting;
  }
  async start(h: SourceHandlers): Promise<void> {
    this.h = h;
    FakeSource.live.add(this);
    await new Promise((r) => setTimeout(r, 5));
    if (this.closeWhileStarting) {
      h.onClose(new Error('connection reset while starting'));
      return new Promise<void>(() => undefined);
    }
    if (this.fail) {
      setImmediate(() => h.onClose(this.fail));
      throw this.fail;
    }
  }
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
  }
  sendStatus(lsn: bigint): void {
    this.sent.push(lsn);
  }
  async stop(): Promise<void> {
    this.stopped = true;
    FakeSource.live.delete(this);
  }
  /** The server side breaks the link. */
  breakLink(message = 'server closed the connection'): void {
    this.h!.onClose(new Error(message));
  }
}

function pgError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

/** A Connection over a script of sources (one per attempt) that records what it was told. */
function harness(script: (() => FakeSource)[], extra: Partial<ConnectionOptions> = {}) {
  const opened: FakeSource[] = [];
  const calls = { settle: 0, live: 0, breaks: 0, fatal: [] as Error[], data: [] as string[] };
  let maxConcurrent = 0;
  const c = new Connection({
    logger,
    open: () => {
      const next = script.shift();
      if (!next) throw new Error('script exhausted');
      const s = next();
      opened.push(s);
      return s;
    },
    onData: (lsn) => calls.data.push(lsn),
    onKeepalive: () => undefined,
    onBreak: () => calls.breaks++,
    settle: async () => {
      calls.settle++;
      await new Promise((r) => setTimeout(r, 10));
    },
    onLive: () => {
      calls.live++;
      maxConcurrent = Math.max(maxConcurrent, FakeSource.live.size);
    },
    onFatal: (err) => calls.fatal.push(err),
    ...extra,
  });
  return { c, opened, calls, maxConcurrent: () => maxConcurrent };
}

async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('Connection: one single-flight lifecycle', () => {
  it('failed connects during a reconnect are retried by the one loop: one settle, one live source', async () => {
    FakeSource.live.clear();
    const refused = () => new FakeSource(pgError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:5432'));
    const { c, opened, calls, maxConcurrent } = harness([
      () => new FakeSource(),
      refused,
      refused,
      refused,
      () => new FakeSource(),
    ]);
    await c.start();
    expect(c.state).toBe('live');
    const first = opened[0]!;
    first.breakLink();
    first.breakLink(); // reported twice: still one loop
    c.interrupt(new Error('leader lock lost')); // and a third report while reconnecting
    expect(c.state).toBe('reconnecting');
    await until(() => c.state === 'live', 'the reconnect');
    await new Promise((r) => setTimeout(r, 300)); // a second loop would have opened another source by now
    expect(opened).toHaveLength(5);
    expect(calls.settle).toBe(1);
    expect(calls.breaks).toBe(1);
    expect(calls.live).toBe(2);
    expect(calls.fatal).toEqual([]);
    expect(maxConcurrent()).toBe(1);
    expect(opened.slice(0, 4).every((s) => s.stopped)).toBe(true);
    expect(opened[4]!.stopped).toBe(false);
    // Late messages of a replaced source are dropped; the live one's arrive.
    first.h!.onData('0/1', Buffer.from('{}'));
    opened[4]!.h!.onData('0/2', Buffer.from('{}'));
    expect(calls.data).toEqual(['0/2']);
    expect(c.sendStatus(7n)).toBe(true);
    expect(opened[4]!.sent).toEqual([7n]);
    await c.stop();
    expect(c.state).toBe('stopped');
    expect(opened[4]!.stopped).toBe(true);
  });

  it('waits at start while the slot is still active for a previous reader (55006)', async () => {
    FakeSource.live.clear();
    const busy = () => new FakeSource(pgError('55006', 'replication slot "s" is active for PID 42'));
    const { c, opened, calls } = harness([busy, busy, () => new FakeSource()]);
    await c.start();
    expect(c.state).toBe('live');
    expect(opened).toHaveLength(3);
    expect(opened[0]!.stopped && opened[1]!.stopped).toBe(true);
    expect(calls.live).toBe(1);
    expect(calls.settle).toBe(0);
  });

  it('rejects start on any other error, with refused credentials named E_PG_AUTH', async () => {
    const { c } = harness([
      () => new FakeSource(pgError('28P01', 'password authentication failed for user "app"')),
    ]);
    await expect(c.start()).rejects.toMatchObject({ code: 'E_PG_AUTH' });
    expect(c.state).toBe('stopped');
  });

  it('a source that closes while starting fails that attempt instead of hanging it', async () => {
    FakeSource.live.clear();
    const { c, opened } = harness([
      () => new FakeSource(),
      () => new FakeSource(undefined, true),
      () => new FakeSource(),
    ]);
    await c.start();
    opened[0]!.breakLink();
    await until(() => c.state === 'live' && opened.length === 3, 'the second attempt');
    expect(opened[1]!.stopped).toBe(true);
    await c.stop();
  });

  it('keeps retrying refused credentials while reconnecting and exposes the reason', async () => {
    FakeSource.live.clear();
    const auth = () => new FakeSource(pgError('28P01', 'password authentication failed for user "app"'));
    const { c, calls } = harness([() => new FakeSource(), auth, auth, auth]);
    await c.start();
    c.interrupt(new Error('terminating connection due to administrator command'));
    await until(() => c.lastError?.message.includes('rotated') === true, 'the auth failure');
    expect(c.state).toBe('reconnecting');
    expect((c.lastError as ConnectorError).code).toBe('E_PG_AUTH');
    expect(calls.fatal).toEqual([]);
    await c.stop();
    expect(c.state).toBe('stopped');
  });

  it('a fatal check before a reconnect (slot lost) ends the loop once', async () => {
    FakeSource.live.clear();
    let checks = 0;
    const { c, calls, opened } = harness([() => new FakeSource(), () => new FakeSource()], {
      beforeConnect: async () => {
        if (++checks > 1) throw new ConnectorError('E_SLOT_LOST', 'slot gone', 3);
      },
    });
    await c.start();
    opened[0]!.breakLink();
    await until(() => calls.fatal.length > 0, 'the fatal error');
    await new Promise((r) => setTimeout(r, 300));
    expect(calls.fatal.map((e) => (e as ConnectorError).code)).toEqual(['E_SLOT_LOST']);
    expect(c.state).toBe('stopped');
    expect(opened).toHaveLength(1);
  });

  it('stop() during a reconnect ends it: no attempt starts afterwards', async () => {
    FakeSource.live.clear();
    const { c, opened } = harness([() => new FakeSource(), () => new FakeSource()]);
    await c.start();
    opened[0]!.breakLink();
    await c.stop();
    await new Promise((r) => setTimeout(r, 400)); // past the first backoff (250 ms)
    expect(opened).toHaveLength(1);
    expect(c.state).toBe('stopped');
  });

  it('pause survives a reconnect: the new source starts paused', async () => {
    FakeSource.live.clear();
    const { c, opened } = harness([() => new FakeSource(), () => new FakeSource()]);
    await c.start();
    c.pause();
    opened[0]!.breakLink();
    await until(() => c.state === 'live', 'the reconnect');
    expect(opened[1]!.paused).toBe(true);
    c.resume();
    expect(opened[1]!.paused).toBe(false);
    await c.stop();
  });
});
