import pg from 'pg';
import { describePgError } from '../../errors.ts';
import type { Logger } from '../../log.ts';

/**
 * A lost network must not keep the lock (found by the fault soak, docs/soak.md): with the leader's link
 * blackholed (no FIN, no RST) its idle session lived on, since the server's TCP keepalives default to
 * two hours and a proxy or NAT in between answers them anyway, so no standby ever took over. Now the
 * leader pings its session every poll and gives the lock up (onLost) when no answer comes within
 * LIVENESS_POLLS polls, and the session carries idle_session_timeout of SESSION_POLLS polls: the server
 * ends it, releasing the lock to a standby, only after the leader has stopped on its own.
 */
const LIVENESS_POLLS = 5;
const SESSION_POLLS = 10;

/**
 * One slot, one reader (docs/design.md §8): several daemons may point at one slot; the one holding a
 * session advisory lock streams, the others wait and take over when its session ends (process killed,
 * network lost: Postgres releases the lock with the session). Polls every `pollMs`.
 */
export class LeaderLock {
  private client?: pg.Client;
  private stopped = false;
  private held = false;
  private pingTimer?: NodeJS.Timeout;
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
          const livenessMs = LIVENESS_POLLS * this.pollMs;
          const c = new pg.Client({
            ...this.config,
            application_name: 'tag-connector-leader',
            connectionTimeoutMillis: livenessMs,
            query_timeout: livenessMs,
          });
          c.on('error', (err) => this.lost(c, err));
          await c.connect();
          this.client = c;
          await this.limitSession(c);
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
          this.watch(c);
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

  /** The server ends the session when the pings stop (PostgreSQL 14+; older: TCP keepalives only). */
  private async limitSession(c: pg.Client): Promise<void> {
    try {
      await c.query(`SET idle_session_timeout = ${SESSION_POLLS * this.pollMs}`);
    } catch (err) {
      this.logger.warn(
        { err: (err as Error).message },
        'leader lock: the server cannot end a lost leader session (idle_session_timeout needs PostgreSQL 14); a standby takes over only once TCP keepalives end it',
      );
    }
    // A real partition (no proxy answering for the peer) is also seen by the server's TCP keepalives.
    await c.query(
      'SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; SET tcp_keepalives_count = 3',
    );
  }

  /** Pings the held lock's session; no answer within the liveness bound = the lock is lost. */
  private watch(c: pg.Client): void {
    let pending = false;
    this.pingTimer = setInterval(() => {
      if (pending) return; // query_timeout rejects a ping that gets no answer
      pending = true;
      c.query('SELECT 1').then(
        () => (pending = false),
        (err: Error) => this.lost(c, new Error(`no answer from PostgreSQL (${err.message})`)),
      );
    }, this.pollMs);
    this.pingTimer.unref();
  }

  /**
   * The lock's session ended or stopped answering (PostgreSQL restarted, network lost): Postgres releases
   * the lock, so another daemon may take it. We stop streaming and re-acquire it before streaming again.
   */
  private lost(client: pg.Client, err: Error): void {
    if (this.stopped || client !== this.client) return;
    clearInterval(this.pingTimer);
    const wasHeld = this.held;
    this.held = false;
    this.client = undefined;
    void client.end().catch(() => undefined);
    if (wasHeld) this.onLost?.(new Error(`lost the leader lock (${err.message})`));
  }

  async release(): Promise<void> {
    this.stopped = true;
    clearInterval(this.pingTimer);
    this.held = false;
    const c = this.client;
    this.client = undefined;
    await c?.end().catch(() => undefined);
  }
}
