/**
 * The soak's fault schedule, a pure function of seed and duration so that a failing run can be
 * replayed: `npm run soak -- --minutes N --seed S` injects the same faults at the same offsets.
 * Two timelines run side by side: SIGKILLs of a daemon (every 6-17 s: over 100 in 30 minutes),
 * and one infrastructure fault at a time (server restarts, broker stops, network faults), drawn from
 * a shuffled bag so that every kind comes up once before any comes up twice.
 */

export const INFRA_KINDS = [
  'pg-restart-fast',
  'pg-restart-immediate',
  'kafka-stop',
  'pg-latency',
  'pg-reset',
  'pg-blackhole',
  'kafka-latency',
  'kafka-reset',
  'kafka-blackhole',
  'ha-blackhole',
] as const;
export type InfraKind = (typeof INFRA_KINDS)[number];

/** Time without SIGKILLs before a leader blackhole, for both daemons to start (15-25 s when loaded). */
export const HA_SETTLE_MS = 30_000;

export interface InfraFault {
  atMs: number;
  kind: InfraKind;
  /** How long the fault lasts (0 for instant ones: resets, restarts). */
  durationMs: number;
  /** Latency added, for the latency kinds. */
  latencyMs?: number;
}

export interface KillPlan {
  atMs: number;
  /** Which daemon: the one streaming (leader), or the other (standby). */
  target: 'leader' | 'standby';
}

export interface Schedule {
  kills: KillPlan[];
  infra: InfraFault[];
}

/** mulberry32: small, seedable, good enough to pick fault times. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface ScheduleOptions {
  durationMs: number;
  seed: number;
  /** Quiet time at the start (daemons settle) and the end (nothing new starts). */
  marginMs?: number;
  /** Gap between infrastructure faults [min, max] (shorter for short runs so every kind comes up). */
  infraGapMs?: [number, number];
  /** Gap between SIGKILLs. */
  killGapMs?: [number, number];
  /** How long a leader blackhole lasts: longer than the server needs to end the leader's session. */
  haBlackholeMs?: number;
}

export function planSchedule(o: ScheduleOptions): Schedule {
  const rnd = prng(o.seed);
  const between = ([lo, hi]: [number, number]) => lo + Math.floor(rnd() * (hi - lo));
  const margin = o.marginMs ?? 10_000;
  const end = o.durationMs - margin;
  const infraGap = o.infraGapMs ?? (o.durationMs < 10 * 60_000 ? [3_000, 8_000] : [10_000, 30_000]);
  const killGap = o.killGapMs ?? [6_000, 17_000];
  const haMs = o.haBlackholeMs ?? 30_000;

  const infra: InfraFault[] = [];
  let bag: InfraKind[] = [];
  for (let t = margin + between(infraGap); t < end;) {
    // The first bag opens with the leader blackhole: a short run must see a takeover too.
    if (bag.length === 0)
      bag = infra.length
        ? shuffle([...INFRA_KINDS], rnd)
        : [
            ...shuffle(
              INFRA_KINDS.filter((k) => k !== 'ha-blackhole'),
              rnd,
            ),
            'ha-blackhole',
          ];
    const kind = bag.pop()!;
    const fault: InfraFault = { atMs: t, kind, durationMs: durationOf(kind, haMs, between) };
    if (kind.endsWith('latency')) fault.latencyMs = between([50, 400]);
    if (t + fault.durationMs > end) break;
    infra.push(fault);
    t += fault.durationMs + between(infraGap);
  }

  // No SIGKILL during a leader blackhole (the takeover it measures must be the server's doing), nor in
  // the HA_SETTLE_MS before it: both daemons get to start, so the trial measures a takeover by a standby
  // that stands by, not a cold start (the injector also waits for that, see faults.ts).
  const quiet = infra
    .filter((f) => f.kind === 'ha-blackhole')
    .map((f) => [f.atMs - HA_SETTLE_MS, f.atMs + f.durationMs + 5_000] as const);
  const kills: KillPlan[] = [];
  for (let t = margin + between(killGap); t < end; t += between(killGap)) {
    if (quiet.some(([a, b]) => t >= a && t <= b)) continue;
    kills.push({ atMs: t, target: rnd() < 0.75 ? 'leader' : 'standby' });
  }
  return { kills, infra };
}

function durationOf(kind: InfraKind, haMs: number, between: (r: [number, number]) => number): number {
  switch (kind) {
    case 'pg-restart-fast':
    case 'pg-restart-immediate':
    case 'pg-reset':
    case 'kafka-reset':
      return 0;
    case 'kafka-stop':
      return between([5_000, 20_000]);
    case 'pg-latency':
    case 'kafka-latency':
      return between([5_000, 15_000]);
    case 'pg-blackhole':
    case 'kafka-blackhole':
      // Shorter than the server's wal_sender_timeout: a stall, not a takeover.
      return between([2_000, 6_000]);
    case 'ha-blackhole':
      return haMs;
  }
}

function shuffle<T>(xs: T[], rnd: () => number): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}
