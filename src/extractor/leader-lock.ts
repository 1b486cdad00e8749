import pg from 'pg';
import type { Logger } from '../log.ts';

/**
 * One slot, one reader (DESIGN §8): several daemons may point at one slot; the one holding a session
 * advisory lock streams, the others wait and take over when its session ends (process killed,
 * network lost: Postgres releases the lock with the session). Polls every `pollMs`.
 */
export class LeaderLock {
  private client?: pg.Client;
  private stopped = false;
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
    let announced = false;
    while (!this.stopped) {
      try {
        if (!this.client) {
          const c = new pg.Client({ ...this.config, application_name: 'tag-connector-leader' });
          c.on('error', (err) => this.lost(err));
          await c.connect();
          this.client = c;
        }
        const { rows } = await this.client.query<{ ok: boolean }>(
          'SELECT pg_try_advisory_lock(hashtext($1)) AS ok',
          [this.key],
        );
        if (rows[0]!.ok) {
          if (announced) this.logger.info({ lock: this.key }, 'took over: this daemon now streams the slot');
          this.client.on('end', () => this.lost(new Error('leader lock connection ended')));
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
        this.logger.warn({ err: (err as Error).message }, 'leader lock: cannot reach PostgreSQL, retrying');
        await this.client?.end().catch(() => undefined);
        this.client = undefined;
      }
      await new Promise((r) => setTimeout(r, this.pollMs));
    }
    return false;
  }

  private lost(err: Error): void {
    if (this.stopped) return;
    this.stopped = true;
    this.onLost?.(
      new Error(`lost the leader lock (${err.message}); stopping so that another daemon can take over`),
    );
  }

  async release(): Promise<void> {
    this.stopped = true;
    const c = this.client;
    this.client = undefined;
    await c?.end().catch(() => undefined);
  }
}
