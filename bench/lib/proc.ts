import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

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
