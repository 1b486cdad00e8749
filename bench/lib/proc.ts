import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat's utime/stime (100 on every Linux we run on). */
const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

/** User + system CPU time of a process in microseconds (0 when it is gone). */
export function cpuMicros(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start after the last ')'.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(f[11]);
    const stime = Number(f[12]);
    return ((utime + stime) * 1e6) / CLK_TCK;
  } catch {
    return 0;
  }
}

/** VmHWM (peak RSS) and VmRSS of a process in bytes. */
export function memory(pid: number | undefined): { rss: number; hwm: number } {
  if (!pid) return { rss: 0, hwm: 0 };
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) =>
      Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  } catch {
    return { rss: 0, hwm: 0 };
  }
}

/** CPU spent by a process between two moments: call `start()` then `stop()`. */
export class CpuMeter {
  private readonly pid: () => number | undefined;
  private started = 0;
  private last = 0;
  constructor(pid: number | (() => number | undefined) | undefined) {
    this.pid = typeof pid === 'function' ? pid : () => pid;
  }
  start(): void {
    this.started = cpuMicros(this.pid());
    this.last = this.started;
  }
  /** Samples now (keep calling while the process lives: a dead process reads as 0). */
  sample(): number {
    const now = cpuMicros(this.pid());
    if (now > 0) this.last = now;
    return this.last - this.started;
  }
}

interface ThreadTimes {
  name: string;
  /** user + system CPU, µs */
  micros: number;
  /** time spent runnable but waiting for a CPU (/proc/.../schedstat), µs */
  waitMicros: number;
}

/**
 * Per thread of a process: its name (/proc/<pid>/task/<tid>/comm), user + system CPU and the time it
 * waited in the run queue, in µs.
 */
export function threadCpu(pid: number | undefined): Map<number, ThreadTimes> {
  const out = new Map<number, ThreadTimes>();
  if (!pid) return out;
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const open = stat.indexOf('(');
      const close = stat.lastIndexOf(')');
      const f = stat.slice(close + 2).split(' ');
      let waitMicros = 0;
      try {
        waitMicros = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[1]) / 1000;
      } catch {
        /* no schedstats on this kernel */
      }
      out.set(Number(tid), {
        name: stat.slice(open + 1, close),
        micros: ((Number(f[11]) + Number(f[12])) * 1e6) / CLK_TCK,
        waitMicros,
      });
    } catch {
      /* the thread ended between readdir and read */
    }
  }
  return out;
}

/**
 * Busy shares of a process's threads over a window: CPU time / wall time per thread, grouped as
 * `main` (the event loop: tid = pid), `kafka` (the Kafka sink's producer thread, named
 * `kafka-producer`) and `other` (V8's GC and compiler helpers, libuv's pool; summed, so it may
 * exceed 1). A share near 1 is a thread that never waited; well below 1 while the walsender is not
 * the limit, it waited for something (fsync, the in-flight bound, a Kafka transaction, the socket).
 */
export class ThreadMeter {
  private readonly pid: number | undefined;
  private at = 0;
  private base = new Map<number, ThreadTimes>();
  private last = new Map<number, ThreadTimes>();
  constructor(pid: number | undefined) {
    this.pid = pid;
  }
  start(): void {
    this.at = Date.now();
    this.base = threadCpu(this.pid);
    this.last = new Map(this.base);
  }
  /** Samples now (keep calling while the process lives: a thread's last reading is kept). */
  sample(): void {
    const now = threadCpu(this.pid);
    for (const [tid, t] of now) this.last.set(tid, t);
  }
  /** Shares over [start, now]; call after a final sample(). */
  shares(wallMs = Date.now() - this.at): BusyShares {
    const out: BusyShares = { main: 0, other: 0, mainRunQueue: 0 };
    for (const [tid, t] of this.last) {
      const micros = t.micros - (this.base.get(tid)?.micros ?? 0);
      const share = micros / 1000 / wallMs;
      if (tid === this.pid) {
        out.main += share;
        out.mainRunQueue = (t.waitMicros - (this.base.get(tid)?.waitMicros ?? 0)) / 1000 / wallMs;
      } else if (t.name === 'kafka-producer') out.kafka = (out.kafka ?? 0) + share;
      else out.other += share;
    }
    const r = (n: number) => Math.round(n * 100) / 100;
    return {
      main: r(out.main),
      ...(out.kafka !== undefined ? { kafka: r(out.kafka) } : {}),
      other: r(out.other),
      mainRunQueue: r(out.mainRunQueue),
    };
  }
}

export interface BusyShares {
  main: number;
  kafka?: number;
  other: number;
  /**
   * The share of the window the main thread was runnable but waited for a CPU: on a loaded machine
   * a low busy share is mostly this (starved), not waiting for I/O (idle = 1 − main − mainRunQueue).
   */
  mainRunQueue: number;
}
