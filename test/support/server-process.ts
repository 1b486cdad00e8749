import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

/**
 * Lets a server process the harness started, and saw ready, run on by itself: its output is no
 * longer read. Returns the pid to stop it by: under the guard (guard.mjs, which kills it when its
 * owner dies) the server is the guard's child, whose pipes stay drained so it never blocks on them;
 * unguarded, the process itself, unreferenced so it does not keep the owner alive.
 */
export function detachServer(proc: ChildProcess, guarded: boolean): number | undefined {
  proc.stdout?.removeAllListeners('data');
  proc.stderr?.removeAllListeners('data');
  if (guarded) {
    proc.stdout?.resume();
    proc.stderr?.resume();
    return childOf(proc.pid!);
  }
  proc.stdout?.destroy();
  proc.stderr?.destroy();
  proc.unref();
  return proc.pid;
}

function childOf(pid: number): number | undefined {
  try {
    const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/);
    return kids[0] ? Number(kids[0]) : undefined;
  } catch {
    return undefined;
  }
}
