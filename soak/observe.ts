import pg from 'pg';
import type { FaultProxy } from './proxy.ts';

export interface SlotSample {
  atMs: number;
  /** Backend pid of the walsender holding the slot, if any. */
  walsenderPid?: number;
  /** Which daemon (index of its proxy) that walsender serves. */
  streamer?: 0 | 1;
  /** Daemon whose session holds the leader lock (an advisory lock in the soak database). */
  lockHolder?: 0 | 1;
  /** Walsenders of our daemons in state `streaming` (at most one: the slot has one reader). */
  streamingWalsenders: number;
}

/**
 * Samples, twice a second over a direct connection, who holds the slot and who holds the leader lock,
 * mapping each backend to a daemon by its client port (the daemon's proxy's upstream port).
 */
export class SlotObserver {
  last?: SlotSample;
  samples = 0;
  /** Samples with more than one daemon walsender streaming. */
  overlaps = 0;
  maxStreaming = 0;
  private timer?: NodeJS.Timeout;
  private client?: pg.Client;
  private busy = false;

  private readonly url: string;
  private readonly slot: string;
  private readonly proxies: readonly FaultProxy[];
  private readonly t0: number;

  constructor(url: string, slot: string, proxies: readonly FaultProxy[], t0: number) {
    this.url = url;
    this.slot = slot;
    this.proxies = proxies;
    this.t0 = t0;
  }

  start(): void {
    this.timer = setInterval(() => void this.sample(), 500);
  }

  stop(): void {
    clearInterval(this.timer);
    void this.client?.end().catch(() => undefined);
  }

  private owner(port: number | null | undefined): 0 | 1 | undefined {
    if (!port) return undefined;
    const i = this.proxies.findIndex((p) => p.upstreamPorts().has(port));
    return i === 0 || i === 1 ? i : undefined;
  }

  async sample(): Promise<SlotSample | undefined> {
    if (this.busy) return this.last;
    this.busy = true;
    try {
      if (!this.client) {
        const c = new pg.Client({ connectionString: this.url, application_name: 'soak-observer' });
        c.on('error', () => undefined);
        await c.connect();
        this.client = c;
      }
      const { rows } = await this.client.query<{
        kind: string;
        pid: number;
        client_port: number | null;
        state: string | null;
      }>(
        `SELECT 'slot' AS kind, s.active_pid AS pid, a.client_port, r.state
           FROM pg_replication_slots s
           LEFT JOIN pg_stat_activity a ON a.pid = s.active_pid
           LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid
          WHERE s.slot_name = $1 AND s.active_pid IS NOT NULL
         UNION ALL
         SELECT 'lock', l.pid, a.client_port, NULL
           FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
          WHERE l.locktype = 'advisory' AND l.granted AND a.datname = current_database()
         UNION ALL
         SELECT 'walsender', r.pid, r.client_port, r.state
           FROM pg_stat_replication r
          WHERE r.state = 'streaming'`,
        [this.slot],
      );
      const slot = rows.find((r) => r.kind === 'slot');
      const lock = rows.find((r) => r.kind === 'lock');
      const streaming = rows.filter((r) => r.kind === 'walsender' && this.owner(r.client_port) !== undefined);
      const s: SlotSample = {
        atMs: Date.now() - this.t0,
        streamingWalsenders: streaming.length,
        ...(slot ? { walsenderPid: slot.pid } : {}),
      };
      const streamer = this.owner(slot?.client_port);
      if (streamer !== undefined) s.streamer = streamer;
      const holder = this.owner(lock?.client_port);
      if (holder !== undefined) s.lockHolder = holder;
      this.samples++;
      this.maxStreaming = Math.max(this.maxStreaming, streaming.length);
      if (streaming.length > 1) this.overlaps++;
      this.last = s;
      return s;
    } catch {
      await this.client?.end().catch(() => undefined);
      this.client = undefined;
      return undefined;
    } finally {
      this.busy = false;
    }
  }
}
