import type { ProfileSummary } from '../cpuprofile.ts';

export interface BenchContext {
  /** Admin URL of the bench's own cluster and the URL of its bench database. */
  adminUrl: string;
  url: string;
  pgBin: string;
  tmp: string;
  changes: number;
  /** The catch-up's daemon runs (sink names). */
  sinks: ReadonlySet<string>;
  /** The catch-up's workloads (bench/lib/workloads.ts) and output plugins, in order. */
  workloads: readonly string[];
  plugins: readonly ('wal2json' | 'pgoutput')[];
  quick: boolean;
  full: boolean;
  /** kafkaPid: the harness broker's JVM when the bench started it (its CPU is reported). */
  env: { kafkaBrokers?: string; kafkaPid?: number; pubsubHost?: string };
  notes: string[];
  log(msg: string): void;
}

/** One line of the report table. */
export interface Row {
  scenario: string;
  variant: string;
  events?: number;
  seconds?: number;
  eventsPerSec?: number;
  /** Against the bare reader of the same run. */
  ratio?: number;
  cpuUsPerChange?: number;
  /** CPU of the PostgreSQL walsender (wal2json) per change. */
  walsenderUsPerChange?: number;
  /** CPU of the Kafka broker (the harness JVM) per change. */
  brokerUsPerChange?: number;
  p50Ms?: number;
  p95Ms?: number;
  p99Ms?: number;
  peakRssMb?: number;
  /**
   * Catch-up rows of the daemon: CPU time over wall time per thread (main = event loop, kafka = the
   * producer thread, other = V8/libuv helpers) and the walsender's.
   */
  busy?: { main: number; kafka?: number; other: number; walsender?: number; mainRunQueue?: number };
  note?: string;
  extra?: Record<string, unknown>;
}

export interface Results {
  date: string;
  machine: Record<string, unknown>;
  options: Record<string, unknown>;
  rows: Row[];
  profile?: ProfileSummary & { file: string };
  notes: string[];
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
export const round = (n: number, digits = 0) => {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
};
