import { spawn } from 'node:child_process';
import { waitFor } from '../ports.ts';

const GUARD = new URL('../guard.mjs', import.meta.url).pathname;

/**
 * Starts a test server process: under guard.mjs when it belongs to a test run (ownerPid), detached
 * for `script/services up` (ownerPid 0). Waits until `ready` resolves.
 */
export async function spawnServer(
  what: string,
  cmd: string,
  args: string[],
  ownerPid: number,
  ready: () => Promise<boolean>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  const [c, a] = ownerPid ? [process.execPath, [GUARD, String(ownerPid), '--', cmd, ...args]] : [cmd, args];
  const proc = spawn(c, a, { stdio: ['ignore', 'ignore', 'pipe'], detached: !ownerPid, env });
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  if (!ownerPid) proc.unref();
  await waitFor(what, async () => {
    if (proc.exitCode !== null) throw new Error(`${what} exited (${proc.exitCode}): ${stderr}`);
    return ready();
  });
  proc.stderr?.removeAllListeners('data');
  proc.stderr?.resume();
  (proc.stderr as unknown as { unref?: () => void })?.unref?.();
  return proc.pid!;
}

export async function httpOk(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return res.ok;
  } catch {
    return false;
  }
}
