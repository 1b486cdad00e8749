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
