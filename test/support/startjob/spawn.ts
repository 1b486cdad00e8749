import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '../ports.ts';

const GUARD = new URL('../guard.mjs', import.meta.url).pathname;

/**
 * Starts a test server process: under guard.mjs when it belongs to a test run (ownerPid), detached
 * for `script/services up` (ownerPid 0). Its output goes to a log file, not a pipe: a pipe breaks when
 * `services up` exits, and a Go server (FerretDB) dies on the next log line (EPIPE). Waits for `ready`.
 */
export async function spawnServer(
  what: string,
  cmd: string,
  args: string[],
  ownerPid: number,
  ready: () => Promise<boolean>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ pid: number; log: string; logDir: string }> {
  const logDir = mkdtempSync(join(tmpdir(), 'tagc-log-'));
  const log = join(logDir, 'server.log');
  const fd = openSync(log, 'a');
  const [c, a] = ownerPid ? [process.execPath, [GUARD, String(ownerPid), '--', cmd, ...args]] : [cmd, args];
  const proc = spawn(c, a, { stdio: ['ignore', fd, fd], detached: !ownerPid, env });
  closeSync(fd);
  if (!ownerPid) proc.unref();
  await waitFor(what, async () => {
    if (proc.exitCode !== null)
      throw new Error(`${what} exited (${proc.exitCode}): ${readFileSync(log, 'utf8').slice(-4000)}`);
    return ready();
  });
  proc.unref();
  return { pid: proc.pid!, log, logDir };
}

export async function httpOk(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return res.ok;
  } catch {
    return false;
  }
}
