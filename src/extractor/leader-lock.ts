import pg from 'pg';
import { describePgError } from '../errors.ts';
import type { Logger } from '../log.ts';

/**
 * One slot, one reader (DESIGN §8): several daemons may point at one slot; the one holding a session
 * advisory lock streams, the others wait and take over when its session ends (process killed,
 * network lost: Postgres releases the lock with the session). Polls every `pollMs`.
 */
export class LeaderLock {
  private client?: pg.Client;
  private stopped = false;
  private held = false;
  private readonly key: string;
  private readonly config: pg.ClientConfig;
  private readonly logger: Logger;
  private readonly pollMs: number;
  onLost?: (err: Error) => void;

  constructor(config: pg.ClientConfig, slot: string, logger: Logger, pollMs = 1000) {
    this.config = config;
    this.key = `tag_connector:slot:${slot}`;
    this.logger = logger;
    this.pollMs = pollMs;
  }

  /** Resolves once this process holds the lock (false if stopped while waiting). */
  async acquire(onWaiting?: () => void): Promise<boolean> {
    if (this.held) return true;
    let announced = false;
    while (!this.stopped) {
      try {
        if (!this.client) {
          const c = new pg.Client({ ...this.config, application_name: 'tag-connector-leader' });
          c.on('error', (err) => this.lost(c, err));
          await c.connect();
          this.client = c;
        }
        const { rows } = await this.client.query<{ ok: boolean }>(
          'SELECT pg_try_advisory_lock(hashtext($1)) AS ok',
          [this.key],
        );
        if (rows[0]!.ok) {
          if (announced) this.logger.info({ lock: this.key }, 'took over: this daemon now streams the slot');
          const c = this.client;
          c.on('end', () => this.lost(c, new Error('leader lock connection ended')));
          this.held = true;
          return true;
        }
        if (!announced) {
          announced = true;
          onWaiting?.();
          this.logger.info(
            { lock: this.key },
            'standby: another daemon streams this slot; waiting to take over',
          );
        }
      } catch (err) {
        await this.client?.end().catch(() => undefined);
        this.client = undefined;
        // Refused credentials do not heal by polling: the caller reports them (E_PG_AUTH) and decides.
        const described = describePgError(err as Error);
        if (described !== err) throw described;
        this.logger.warn({ err: (err as Error).message }, 'leader lock: cannot reach PostgreSQL, retrying');
      }
      await new Promise((r) => setTimeout(r, this.pollMs));
    }
    return false;
  }

  /**
   * The lock's session ended (PostgreSQL restarted, network lost): Postgres released the lock, so
   * another daemon may take it. We stop streaming and re-acquire it before streaming again.
   */
  private lost(client: pg.Client, err: Error): void {
    if (this.stopped || client !== this.client) return;
    const wasHeld = this.held;
    this.held = false;
    this.client = undefined;
    void client.end().catch(() => undefined);
    if (wasHeld) this.onLost?.(new Error(`lost the leader lock (${err.message})`));
  }

  async release(): Promise<void> {
    this.stopped = true;
    this.held = false;
    const c = this.client;
    this.client = undefined;
    await c?.end().catch(() => undefined);
  }
}
