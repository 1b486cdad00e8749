import type { Logger } from '../../log.ts';
import { isAuthError, isConnectionError } from './connection-errors.ts';
import { reconnectDelayMs } from './connection.ts';

export interface StartupWaitOptions {
  logger: Logger;
  /** How long to keep trying, from the first failure; 0 = fail at once (`--startup-wait-ms`). */
  waitMs: number;
  /** False once the daemon is stopping: the wait ends with the last error. */
  keepTrying: () => boolean;
  /** The failure being waited out, or undefined once through (readiness reports it). */
  onWaiting?: (err: Error | undefined) => void;
  /** For tests: the pause before attempt n (default: the reconnect backoff, 250 ms doubling to 10 s). */
  delayMs?: (attempt: number) => number;
  now?: () => number;
}

/** Sleeps `ms`, waking early (in steps of 100 ms) once `keepTrying` turns false: SIGTERM is not kept waiting. */
async function sleep(ms: number, keepTrying: () => boolean): Promise<void> {
  const until = Date.now() + ms;
  while (keepTrying() && Date.now() < until)
    await new Promise<void>((r) => setTimeout(r, Math.min(100, until - Date.now())));
}

/**
 * Start-up's first contact with PostgreSQL (docs/connection-lifecycle.md): while the server is not
 * reachable yet (starting up, restarting, the network not there yet, too many connections), try
 * again with the reconnect backoff for up to `waitMs`, then fail with the last error, so a daemon
 * started beside its database comes up with it and a database that stays away still ends in exit 1
 * for the service manager. Refused credentials fail at once: the daemon reads its password once, so
 * waiting cannot mend them. Anything else (wal_level, privileges) fails at once too.
 */
export async function untilReachable<T>(step: () => Promise<T>, o: StartupWaitOptions): Promise<T> {
  const now = o.now ?? Date.now;
  const pause = o.delayMs ?? reconnectDelayMs;
  let since: number | undefined;
  for (let attempt = 1; ; attempt++) {
    try {
      const out = await step();
      if (since !== undefined) o.logger.info({ attempts: attempt }, 'PostgreSQL reachable');
      o.onWaiting?.(undefined);
      return out;
    } catch (err) {
      since ??= now();
      const left = since + o.waitMs - now();
      if (!isConnectionError(err) || isAuthError(err) || left <= 0 || !o.keepTrying()) {
        o.onWaiting?.(undefined);
        throw err;
      }
      o.onWaiting?.(err as Error);
      const ms = Math.min(pause(attempt), left);
      o.logger.warn(
        { err: (err as Error).message, attempt, retryInMs: ms, giveUpInMs: left },
        'PostgreSQL not reachable at start; retrying',
      );
      await sleep(ms, o.keepTrying);
    }
  }
}
