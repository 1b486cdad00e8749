import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { memory } from '../bench/lib/proc.ts';

const ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..');
const CLI = join(ROOT, 'src', 'cli', 'main.ts');
const GUARD = join(ROOT, 'test', 'support', 'guard.mjs');

export interface ExitRecord {
  daemon: string;
  atMs: number;
  code: number | null;
  signal: string | null;
  /** Whether the soak killed it (SIGKILL fault) or it stopped by itself (fatal error, gave up). */
  killed: boolean;
  lastLog: string;
}

/**
 * One daemon kept running like a service manager would (restart on exit, 1 s later): the soak's
 * SIGKILLs land on the daemon itself, a process of a guard that dies with the soak, so an aborted soak
 * leaves nothing behind. Its stderr goes to a log file; RSS is sampled each second.
 */
export class SupervisedDaemon {
  private guard?: ChildProcess;
  private running = false;
  private killing = false;
  private log: WriteStream;
  private tail = '';
  private rssTimer?: NodeJS.Timeout;
  peakRss = 0;
  starts = 0;
  readonly exits: ExitRecord[] = [];
  /** When the current process last said it streams (0: not since its start). */
  streamingSince = 0;
  /** When the current process said it stands by for the lock (0: it does not, or it took over). */
  standingBySince = 0;
  /** When the current process said it took the lock over from another daemon (0: not since its start). */
  tookOverAt = 0;
  /** The current process's `start-up steps` log line (ms per step, ms from the lock to streaming). */
  startup?: { atMs: number; steps: Record<string, number>; sinceLockMs: number };
  /** Every start-up's steps, for the report. */
  readonly startups: { atMs: number; steps: Record<string, number>; sinceLockMs: number }[] = [];

  readonly name: string;
  private readonly args: () => string[];
  private readonly env: NodeJS.ProcessEnv;
  private readonly t0: number;

  constructor(name: string, args: () => string[], env: NodeJS.ProcessEnv, logPath: string, t0: number) {
    this.name = name;
    this.args = args;
    this.env = env;
    this.t0 = t0;
    this.log = createWriteStream(logPath, { flags: 'a' });
  }

  start(): void {
    this.running = true;
    this.spawnOnce();
    this.rssTimer = setInterval(() => {
      const rss = memory(this.pid).rss;
      if (rss > this.peakRss) this.peakRss = rss;
    }, 1000);
  }

  /** The daemon's own pid (the guard's child). */
  get pid(): number | undefined {
    const g = this.guard?.pid;
    if (!g) return undefined;
    try {
      const kid = readFileSync(`/proc/${g}/task/${g}/children`, 'utf8').trim().split(/\s+/)[0];
      return kid ? Number(kid) : undefined;
    } catch {
      return undefined;
    }
  }

  private spawnOnce(): void {
    const proc = spawn(
      process.execPath,
      [GUARD, String(process.pid), '--', process.execPath, '--max-semi-space-size=8', CLI, ...this.args()],
      { cwd: ROOT, env: { ...process.env, ...this.env }, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    this.guard = proc;
    this.starts++;
    this.streamingSince = 0;
    this.standingBySince = 0;
    this.tookOverAt = 0;
    this.startup = undefined;
    this.tail = '';
    let partial = '';
    proc.stderr!.on('data', (d: Buffer) => {
      this.log.write(d);
      const s = d.toString();
      this.tail = (this.tail + s).slice(-4000);
      const lines = (partial + s).split('\n');
      partial = lines.pop()!;
      for (const line of lines) this.onLogLine(line);
    });
    proc.on('exit', (code, signal) => {
      const killed = this.killing || !this.running;
      this.killing = false;
      this.exits.push({
        daemon: this.name,
        atMs: Date.now() - this.t0,
        code,
        signal,
        killed,
        lastLog: killed ? '' : lastLines(this.tail, 3),
      });
      this.log.write(`--- soak: ${this.name} exited code=${code} signal=${signal} killed=${killed}\n`);
      this.guard = undefined;
      if (this.running) setTimeout(() => this.running && !this.guard && this.spawnOnce(), 1000);
    });
  }

  private onLogLine(line: string): void {
    if (line.includes('"msg":"streaming"')) this.streamingSince = Date.now();
    else if (line.includes('"msg":"standby: ')) this.standingBySince = Date.now();
    else if (line.includes('"msg":"took over')) {
      this.tookOverAt = Date.now();
      this.standingBySince = 0;
    } else if (line.includes('"msg":"start-up steps')) {
      try {
        const j = JSON.parse(line) as { steps: Record<string, number>; sinceLockMs: number };
        this.startup = { atMs: Date.now() - this.t0, steps: j.steps, sinceLockMs: j.sinceLockMs };
        this.startups.push(this.startup);
      } catch {
        // a line cut by the kill: nothing to learn from it
      }
    }
  }

  /** SIGKILLs the daemon (the guard sees it die and exits; the supervisor restarts it). */
  sigkill(): boolean {
    const pid = this.pid;
    if (!pid) return false;
    this.killing = true;
    try {
      process.kill(pid, 'SIGKILL');
      return true;
    } catch {
      this.killing = false;
      return false;
    }
  }

  /** Stops for good: SIGTERM (drains), then SIGKILL after `timeoutMs`. Returns the exit code. */
  async stop(timeoutMs = 20_000): Promise<number | null> {
    this.running = false;
    clearInterval(this.rssTimer);
    const guard = this.guard;
    let code: number | null = null;
    if (guard) {
      const exited = new Promise<number | null>((r) => guard.once('exit', (c) => r(c)));
      const pid = this.pid;
      if (pid) process.kill(pid, 'SIGTERM');
      else guard.kill('SIGTERM');
      const timer = setTimeout(() => {
        const p = this.pid;
        if (p) process.kill(p, 'SIGKILL');
        guard.kill('SIGKILL');
      }, timeoutMs);
      code = await exited;
      clearTimeout(timer);
    }
    await new Promise<void>((r) => this.log.end(() => r()));
    return code;
  }
}

function lastLines(s: string, n: number): string {
  return s.trim().split('\n').slice(-n).join('\n');
}
