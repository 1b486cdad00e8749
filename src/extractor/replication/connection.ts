import { describePgError } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import type { Lsn } from '../../util/lsn.ts';
import type { ReplicationSource, SourceHandlers } from './replication-source.ts';

/**
 * idle → connecting → live ⇄ reconnecting → stopped. `connecting` is the first connect (which waits
 * out a slot still held by a dying reader), `reconnecting` the one retry loop after a live link broke.
 */
export type ConnectionState = 'idle' | 'connecting' | 'live' | 'reconnecting' | 'stopped';

export interface ConnectionOptions {
  logger: Logger;
  /** A fresh source per attempt. */
  open: () => ReplicationSource;
  /**
   * Checks before each attempt (slot there and valid, leader lock held). An error with an `exitCode`
   * other than 1 (slot lost or invalidated) is fatal; anything else is retried.
   */
  beforeConnect?: () => Promise<void>;
  /** Bytes and keepalives of the current source only: a replaced source's late messages never come here. */
  onData(walLsn: string, payload: Buffer): void;
  onKeepalive(walEnd: string, replyRequested: boolean): void;
  /** Notices of the current source only, in stream order with its data. */
  onNotice?(severity: string, message: string): void;
  /** The live link broke: called once per break, before settle(). */
  onBreak?(err: Error): void;
  /**
   * Settles what arrived before a break (hand it to the sinks, let them drain, forget unconfirmed
   * transactions: Postgres resends them from confirmed_flush_lsn) before the next attempt streams.
   */
  settle(): Promise<void>;
  /** A source is live (first connect and every reconnect). */
  onLive(): void;
  /** The loop gave up: a fatal error (slot lost, settle failed). */
  onFatal(err: Error): void;
}

/** Attempts at start while the slot is still active for a previous reader's walsender (55006). */
const BUSY_SLOT_ATTEMPTS = 60;
const BUSY_SLOT_DELAY_MS = 500;

/** Exponential backoff between reconnect attempts: 250 ms doubling up to 10 s. */
export function reconnectDelayMs(attempt: number): number {
  return Math.min(10_000, 250 * 2 ** Math.min(attempt - 1, 6));
}

const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function isFatal(err: unknown): boolean {
  const exitCode = (err as { exitCode?: number }).exitCode;
  return exitCode !== undefined && exitCode !== 1;
}

/**
 * The replication connection's lifecycle as one single-flight state machine: connect, stand by for a
 * busy slot, stream, reconnect after a break, stop. Exactly one source is current at a time and only
 * it may deliver data or report a break; a failed attempt is reported once, by its rejected start
 * (its onClose is the same failure and is ignored), so a failed connect can never start a second
 * retry loop beside the running one, orphan a live stream, or reset pending state mid-stream.
 */
export class Connection {
  private readonly o: ConnectionOptions;
  private readonly log: Logger;
  private _state: ConnectionState = 'idle';
  /** The source of the attempt in progress, or the live one. */
  private source?: ReplicationSource;
  private paused = false;
  /** Set by stop(): no attempt may start or go live after it. */
  private ending = false;
  private attempts = 0;
  /** The last failure of the link or of an attempt, cleared when a source goes live. */
  lastError?: Error;
  /** The reconnect loop in flight, if any (for tests and shutdown). */
  loop?: Promise<void>;

  constructor(options: ConnectionOptions) {
    this.o = options;
    this.log = options.logger;
  }

  get state(): ConnectionState {
    return this._state;
  }

  /** The first connect: waits while the slot is active for a previous reader, then rejects on error. */
  async start(): Promise<void> {
    if (this._state !== 'idle') throw new Error(`connection already ${this._state}`);
    this._state = 'connecting';
    for (let attempt = 1; ; attempt++) {
      try {
        await this.attempt();
        return;
      } catch (err) {
        if (this.ending) return;
        const e = err as Error & { code?: string };
        // A previous reader's walsender can linger a moment after it died ("slot is active for PID"):
        // wait for it rather than fail the takeover.
        if (e.code !== '55006' || attempt >= BUSY_SLOT_ATTEMPTS) {
          this._state = 'stopped';
          throw describePgError(e);
        }
        this.log.info({ err: e.message }, 'slot still held by a previous reader; waiting');
        await delay(BUSY_SLOT_DELAY_MS);
      }
    }
  }

  pause(): void {
    this.paused = true;
    this.source?.pause();
  }

  resume(): void {
    this.paused = false;
    this.source?.resume();
  }

  /** Sends a standby status update on the live link; false when there is none (nothing was sent). */
  sendStatus(lsn: Lsn): boolean {
    if (this._state !== 'live' || !this.source) return false;
    this.source.sendStatus(lsn);
    return true;
  }

  /** Breaks the live link and goes through the reconnect loop (e.g. the leader lock was lost). */
  interrupt(err: Error): void {
    this.broken(err);
  }

  /** Ends the lifecycle: no further attempt; the current source is stopped. Idempotent. */
  async stop(): Promise<void> {
    this.ending = true;
    this._state = 'stopped';
    const s = this.source;
    this.source = undefined;
    await s?.stop().catch(() => undefined);
  }

  private async attempt(): Promise<void> {
    if (this.o.beforeConnect) await this.o.beforeConnect();
    if (this.ending) throw new Error('stopped');
    const source = this.o.open();
    this.source = source;
    let closedWhileStarting!: (err: Error) => void;
    const closedEarly = new Promise<never>((_, reject) => (closedWhileStarting = reject));
    closedEarly.catch(() => undefined);
    const handlers: SourceHandlers = {
      onData: (lsn, buf) => {
        if (this.source === source) this.o.onData(lsn, buf);
      },
      onKeepalive: (lsn, reply) => {
        if (this.source === source) this.o.onKeepalive(lsn, reply);
      },
      onNotice: (severity, message) => {
        if (this.source === source) this.o.onNotice?.(severity, message);
      },
      onClose: (err) => {
        if (this.source !== source) return;
        if (this._state === 'live') {
          if (err) this.broken(err); // no error: we stopped it ourselves
        } else closedWhileStarting(err ?? new Error('replication connection closed while starting'));
      },
    };
    try {
      await Promise.race([source.start(handlers), closedEarly]);
      if (this.ending) throw new Error('stopped');
    } catch (err) {
      if (this.source === source) this.source = undefined;
      await source.stop().catch(() => undefined);
      throw err;
    }
    if (this.paused) source.pause();
    this._state = 'live';
    this.attempts = 0;
    this.lastError = undefined;
    this.o.onLive();
  }

  /** The live link broke: the one reconnect loop starts. A break reported in any other state is ignored. */
  private broken(err: Error): void {
    if (this._state !== 'live' || this.ending) return;
    this._state = 'reconnecting';
    this.lastError = describePgError(err);
    this.log.warn({ err: err.message }, 'replication connection lost; reconnecting');
    this.o.onBreak?.(err);
    this.loop = this.reconnect().finally(() => (this.loop = undefined));
  }

  private async reconnect(): Promise<void> {
    const old = this.source;
    this.source = undefined;
    await old?.stop().catch(() => undefined);
    try {
      await this.o.settle();
    } catch (err) {
      return this.giveUp(err as Error);
    }
    while (!this.ending) {
      this.attempts++;
      await delay(reconnectDelayMs(this.attempts));
      if (this.ending) return;
      try {
        await this.attempt();
        return;
      } catch (err) {
        if (this.ending) return;
        if (isFatal(err)) return this.giveUp(err as Error);
        const e = describePgError(err as Error);
        this.lastError = e;
        const code = (e as { code?: string }).code;
        this.log.warn(
          { err: e.message, ...(code ? { code } : {}), attempt: this.attempts },
          'reconnect failed',
        );
      }
    }
  }

  private giveUp(err: Error): void {
    this.ending = true;
    this._state = 'stopped';
    this.o.onFatal(err);
  }
}
