import type { SupervisedDaemon } from './daemons.ts';
import type { SlotObserver } from './observe.ts';
import type { InfraFault, KillPlan, prng } from './schedule.ts';
import type { SoakServers } from './servers.ts';

/** What one leader blackhole showed: when the server ended the session and when the standby took over. */
export interface HaTrial {
  atMs: number;
  leader: 0 | 1;
  /** How long the soak waited for a fair start: the leader streaming, the other daemon standing by. */
  waitedForReadyMs: number;
  /** ms after the blackhole began: the old walsender gone from the server. */
  walsenderEndedMs?: number;
  /** ms after the blackhole began: the leader lock held by the other daemon's session. */
  lockMovedMs?: number;
  /** ms after the blackhole began: the other daemon streaming the slot (seen by the server). */
  takeoverMs?: number;
  /** ms after the blackhole began: the standby logged that it took the lock. */
  standbyTookLockMs?: number;
  /** The standby's start-up after the lock (its `start-up steps` log line): ms per step, and in all. */
  standbySteps?: Record<string, number>;
  standbyLockToStreamMs?: number;
  /** The other daemon streamed while the old walsender was still there (must never happen). */
  overlap: boolean;
}

export interface FaultLog {
  counts: Record<string, number>;
  skipped: Record<string, number>;
  /** Timeline for the report: offset, kind, detail. */
  timeline: string[];
  ha: HaTrial[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs the schedule against the live system. `stopped()` ends it early (the soak is over); faults
 * that began are always undone (a link healed, a broker started again) before it returns.
 */
export class FaultInjector {
  readonly log: FaultLog = { counts: {}, skipped: {}, timeline: [], ha: [] };

  private readonly s: SoakServers;
  private readonly daemons: readonly [SupervisedDaemon, SupervisedDaemon];
  private readonly observer: SlotObserver;
  private readonly t0: number;
  private readonly rnd: ReturnType<typeof prng>;
  private readonly stopped: () => boolean;
  /** A leader blackhole is being prepared or under way: no SIGKILL lands meanwhile. */
  private haActive = false;

  constructor(
    s: SoakServers,
    daemons: readonly [SupervisedDaemon, SupervisedDaemon],
    observer: SlotObserver,
    t0: number,
    rnd: ReturnType<typeof prng>,
    stopped: () => boolean,
  ) {
    this.s = s;
    this.daemons = daemons;
    this.observer = observer;
    this.t0 = t0;
    this.rnd = rnd;
    this.stopped = stopped;
  }

  private note(kind: string, detail = ''): void {
    this.log.counts[kind] = (this.log.counts[kind] ?? 0) + 1;
    const at = ((Date.now() - this.t0) / 1000).toFixed(1);
    this.log.timeline.push(`${at}s ${kind}${detail ? ` ${detail}` : ''}`);
  }

  private skip(kind: string): void {
    this.log.skipped[kind] = (this.log.skipped[kind] ?? 0) + 1;
  }

  private async until(atMs: number): Promise<boolean> {
    while (!this.stopped() && Date.now() - this.t0 < atMs) await sleep(Math.min(250, atMs));
    return !this.stopped();
  }

  async runKills(kills: KillPlan[]): Promise<void> {
    for (const k of kills) {
      if (!(await this.until(k.atMs))) return;
      if (this.haActive) {
        this.skip('sigkill (leader blackhole under way)');
        continue;
      }
      const leader = this.observer.last?.streamer;
      const i =
        leader === undefined ? (this.rnd() < 0.5 ? 0 : 1) : k.target === 'leader' ? leader : 1 - leader;
      const d = this.daemons[i as 0 | 1];
      if (d.sigkill()) this.note('sigkill', `${d.name}${leader === i ? ' (leader)' : ''}`);
      else this.skip('sigkill');
    }
  }

  async runInfra(faults: InfraFault[]): Promise<void> {
    for (const f of faults) {
      if (!(await this.until(f.atMs))) return;
      await this.inject(f);
    }
  }

  private async inject(f: InfraFault): Promise<void> {
    const { s } = this;
    const pgLinks = s.pgProxies;
    const hold = async (ms: number) => {
      const end = Date.now() + ms;
      while (Date.now() < end && !this.stopped()) await sleep(100);
    };
    switch (f.kind) {
      case 'pg-restart-fast':
      case 'pg-restart-immediate': {
        const mode = f.kind === 'pg-restart-fast' ? 'fast' : 'immediate';
        this.note(f.kind);
        await s.pg.restart(mode);
        return;
      }
      case 'kafka-stop': {
        const mode = this.rnd() < 0.5 ? 'clean' : 'kill';
        this.note(f.kind, `${mode} for ${f.durationMs} ms`);
        await s.kafka.stop(mode);
        await hold(f.durationMs);
        await s.kafka.start();
        return;
      }
      case 'pg-latency':
      case 'kafka-latency': {
        const links = f.kind === 'pg-latency' ? pgLinks : [s.kafkaProxy];
        this.note(f.kind, `+${f.latencyMs} ms for ${f.durationMs} ms`);
        for (const p of links) p.setLatency(f.latencyMs ?? 100);
        await hold(f.durationMs);
        for (const p of links) p.heal();
        return;
      }
      case 'pg-reset':
        this.note(f.kind, `${pgLinks.reduce((n, p) => n + p.connections(), 0)} connections`);
        for (const p of pgLinks) p.reset();
        return;
      case 'kafka-reset':
        this.note(f.kind, `${s.kafkaProxy.connections()} connections`);
        s.kafkaProxy.reset();
        return;
      case 'pg-blackhole':
      case 'kafka-blackhole': {
        const links = f.kind === 'pg-blackhole' ? pgLinks : [s.kafkaProxy];
        this.note(f.kind, `${f.durationMs} ms`);
        for (const p of links) p.blackhole();
        await hold(f.durationMs);
        for (const p of links) p.heal();
        return;
      }
      case 'ha-blackhole':
        return this.haBlackhole(f.durationMs);
    }
  }

  /**
   * Cuts the leader's PostgreSQL link (half-open) and watches the server: the standby may stream only
   * once the server has ended the leader's walsender (wal_sender_timeout) and lock session.
   */
  private async haBlackhole(durationMs: number): Promise<void> {
    this.haActive = true;
    try {
      await this.haTrial(durationMs);
    } finally {
      this.haActive = false;
    }
  }

  /**
   * A fair trial measures the takeover, not a cold start: it begins only once the leader streams and the
   * other daemon has started and stands by for the lock (waiting up to READY_WAIT_MS for that; no
   * SIGKILL lands meanwhile), else it is skipped.
   */
  private async haTrial(durationMs: number): Promise<void> {
    const READY_WAIT_MS = 60_000;
    const waitStart = Date.now();
    let before = await this.observer.sample();
    for (;;) {
      const leader = before?.streamer;
      if (
        leader !== undefined &&
        before?.walsenderPid !== undefined &&
        before.lockHolder === leader &&
        this.daemons[1 - leader]!.standingBySince > 0
      )
        break;
      if (this.stopped() || Date.now() - waitStart > READY_WAIT_MS) {
        this.skip('ha-blackhole (no streaming leader with a standby by)');
        return;
      }
      await sleep(250);
      before = await this.observer.sample();
    }
    const leader = before.streamer!;
    const standby = this.daemons[1 - leader]!;
    const oldPid = before.walsenderPid;
    const proxy = this.s.pgProxies[leader];
    this.note('ha-blackhole', `${this.daemons[leader].name} for ${durationMs} ms`);
    const start = Date.now();
    proxy.blackhole();
    const trial: HaTrial = {
      atMs: start - this.t0,
      leader,
      waitedForReadyMs: start - waitStart,
      overlap: false,
    };
    const standbyStartup = standby.startup;
    while (Date.now() - start < durationMs && !this.stopped()) {
      await sleep(250);
      const x = await this.observer.sample();
      if (!x) continue;
      const ms = Date.now() - start;
      const oldGone = x.walsenderPid !== oldPid;
      if (oldGone && trial.walsenderEndedMs === undefined) trial.walsenderEndedMs = ms;
      if (x.lockHolder === 1 - leader && trial.lockMovedMs === undefined) trial.lockMovedMs = ms;
      if (x.streamer === 1 - leader && trial.takeoverMs === undefined) {
        trial.takeoverMs = ms;
        if (!oldGone) trial.overlap = true;
      }
      if (x.streamingWalsenders > 1) trial.overlap = true;
    }
    proxy.heal();
    if (standby.tookOverAt >= start) trial.standbyTookLockMs = standby.tookOverAt - start;
    if (standby.startup && standby.startup !== standbyStartup) {
      trial.standbySteps = standby.startup.steps;
      trial.standbyLockToStreamMs = standby.startup.sinceLockMs;
    }
    this.log.ha.push(trial);
    this.log.timeline.push(
      `  ha: waited ${trial.waitedForReadyMs} ms for a standby; walsender ended ${trial.walsenderEndedMs ?? '-'} ms, ` +
        `lock moved ${trial.lockMovedMs ?? '-'} ms, standby took the lock ${trial.standbyTookLockMs ?? '-'} ms, ` +
        `streaming ${trial.takeoverMs ?? '-'} ms (lock to streaming ${trial.standbyLockToStreamMs ?? '-'} ms)`,
    );
  }
}
