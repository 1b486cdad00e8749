import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
/** The CLI from source (Node 24 runs TypeScript directly); TAG_CONNECTOR_CLI=dist uses the build. */
export const CLI =
  process.env.TAG_CONNECTOR_CLI === 'dist'
    ? join(ROOT, 'dist', 'cli', 'main.js')
    : join(ROOT, 'src', 'cli', 'main.ts');

export interface Daemon {
  proc: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Daemon {
  const proc = spawn(process.execPath, ['--max-semi-space-size=8', CLI, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    if (out.length > 4_000_000) out = out.slice(-2_000_000);
  });
  proc.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    if (err.length > 1_000_000) err = err.slice(-500_000);
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return {
    proc,
    stdout: () => out,
    stderr: () => err,
    exit,
    kill: (signal = 'SIGTERM') => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exit;
    },
  };
}

/** Waits until the daemon's log says it streams (or it exits). */
export async function waitStreaming(d: Daemon, timeoutMs = 30000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!/"msg":"streaming"/.test(d.stderr())) {
    if (d.proc.exitCode !== null)
      throw new Error(`daemon exited ${d.proc.exitCode}: ${d.stderr().slice(-2000)}`);
    if (Date.now() > deadline)
      throw new Error(`daemon not streaming after ${timeoutMs} ms: ${d.stderr().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
