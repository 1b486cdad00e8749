import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const CLI = join(ROOT, 'src', 'cli', 'main.ts');

export interface DaemonOptions {
  pgUrl: string;
  slot: string;
  table: string;
  sinks: string[];
  filePath?: string;
  /** The output plugin (default wal2json); pgoutput streams `publication`. */
  plugin?: 'wal2json' | 'pgoutput';
  publication?: string;
  /** Extra CLI flags (e.g. Kafka brokers). */
  args?: string[];
  /** Extra node flags (e.g. --cpu-prof). */
  nodeArgs?: string[];
  /** Another build's CLI entry (bench/ab.ts compares two source trees); default: this tree's. */
  cli?: string;
  env?: NodeJS.ProcessEnv;
}

export interface SinkInfo {
  name: string;
  state: string;
  delivered: number;
  queued: number;
  lastError: string | null;
}

export interface Info {
  state: string;
  confirmedLsn: string | null;
  counts: { changes: number; events: number; transactions: number } | null;
  inFlight: { events: number; bytes: number } | null;
  sinks: SinkInfo[];
}

/** `extract-tasks` from source as a child process; its stdout goes to /dev/null (the stdout sink). */
export class Daemon {
  readonly proc: ChildProcess;
  url = '';
  /** Epoch ms of the spawn (≈ the start of a --cpu-prof profile). */
  readonly spawnedAt = Date.now();
  /** Epoch ms of the daemon's "streaming" log line. */
  streamingAt = 0;
  private err = '';
  private lineBuf = '';
  private readonly exited: Promise<number | null>;

  constructor(o: DaemonOptions) {
    const args = [
      // The V8 flag the installed CLI's shebang (and the Dockerfile) runs with.
      `--max-semi-space-size=${process.env.BENCH_SEMI_SPACE_MB ?? '8'}`,
      ...(o.nodeArgs ?? []),
      // Investigation hook, e.g. BENCH_NODE_ARGS=--trace-gc BENCH_DAEMON_STDOUT=/tmp/gc.log
      ...(process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? []),
      o.cli ?? CLI,
      'extract-tasks',
      '--pg-url',
      o.pgUrl,
      '--slot',
      o.slot,
      '--plugin',
      o.plugin ?? 'wal2json',
      ...(o.publication ? ['--publication', o.publication] : []),
      '--preset',
      'none',
      '--tables',
      o.table,
      '--serverPort',
      '0',
      '--log-level',
      'info',
      ...o.sinks.flatMap((s) => ['--sink', s]),
      ...(o.filePath ? ['--file-path', o.filePath] : []),
      ...(o.args ?? []),
    ];
    const devnull = openSync(process.env.BENCH_DAEMON_STDOUT ?? '/dev/null', 'a');
    this.proc = spawn(process.execPath, args, {
      cwd: ROOT,
      env: { ...process.env, ...o.env },
      stdio: ['ignore', devnull, 'pipe'],
    });
    closeSync(devnull);
    this.proc.stderr!.on('data', (d: Buffer) => this.onStderr(d.toString()));
    this.exited = new Promise((resolve) => this.proc.on('exit', (code) => resolve(code)));
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  private onStderr(text: string): void {
    this.err = (this.err + text).slice(-20_000);
    this.lineBuf += text;
    let nl: number;
    while ((nl = this.lineBuf.indexOf('\n')) >= 0) {
      const line = this.lineBuf.slice(0, nl);
      this.lineBuf = this.lineBuf.slice(nl + 1);
      if (!line.startsWith('{')) continue;
      try {
        const m = JSON.parse(line) as { msg?: string; url?: string; time?: number };
        if (m.msg === 'HTTP API listening' && m.url) this.url = m.url;
        if (m.msg === 'streaming' && !this.streamingAt) this.streamingAt = m.time ?? Date.now();
      } catch {
        /* not a log line */
      }
    }
  }

  stderr(): string {
    return this.err;
  }

  alive(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  async waitStreaming(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.streamingAt || !this.url) {
      if (!this.alive()) throw new Error(`daemon exited ${this.proc.exitCode}: ${this.err.slice(-2000)}`);
      if (Date.now() > deadline)
        throw new Error(`daemon not streaming after ${timeoutMs} ms: ${this.err.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  async info(): Promise<Info> {
    const res = await fetch(`${this.url}/info`);
    return (await res.json()) as Info;
  }

  async metrics(): Promise<string> {
    return (await fetch(`${this.url}/metrics`)).text();
  }

  /** The fewest events any sink has delivered since the daemon started. */
  async delivered(): Promise<number> {
    const info = await this.info();
    return Math.min(...info.sinks.map((s) => s.delivered));
  }

  /** Polls /info until every sink has delivered `events` (the catch-up's completion). */
  async waitDelivered(events: number, timeoutMs: number, onPoll?: () => void): Promise<Info> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!this.alive()) throw new Error(`daemon exited ${this.proc.exitCode}: ${this.err.slice(-2000)}`);
      const info = await this.info();
      onPoll?.();
      const failed = info.sinks.find((s) => s.state === 'failed');
      if (failed) throw new Error(`sink ${failed.name} failed: ${failed.lastError}`);
      if (info.sinks.length && info.sinks.every((s) => s.delivered >= events)) return info;
      if (Date.now() > deadline)
        throw new Error(
          `timed out: delivered ${info.sinks.map((s) => `${s.name}=${s.delivered}`).join(', ')} of ${events}`,
        );
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** SIGTERM (the daemon drains and exits 0); SIGKILL after `graceMs`. */
  async stop(graceMs = 20_000): Promise<number | null> {
    if (this.alive()) this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.alive() && this.proc.kill('SIGKILL'), graceMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}
