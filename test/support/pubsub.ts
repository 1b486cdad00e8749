import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from './ports.ts';
import { detachServer } from './server-process.ts';
import { CACHE_DIR, type ServiceDef } from './services.ts';

/**
 * Google's Pub/Sub fake (`pstest`, built by script/bootstrap.d/20-pstest) on a loopback port.
 * pstest keeps everything in memory: after `stop()` + `start()` the port is the same but every topic,
 * subscription and unacknowledged message is gone, so outage tests recreate what they need.
 */

export const PSTEST_BIN = join(CACHE_DIR, 'pstest', 'pstest');
const GUARD = new URL('./guard.mjs', import.meta.url).pathname;

export interface PubSubEmulatorOptions {
  /** Process whose death stops the server (defaults to this process); 0 = none (services up). */
  ownerPid?: number;
  port?: number;
}

export class PubSubEmulator {
  port: number;
  private proc?: ChildProcess;
  private readonly ownerPid: number;

  constructor(options: PubSubEmulatorOptions = {}) {
    this.ownerPid = options.ownerPid ?? process.pid;
    this.port = options.port ?? 0;
  }

  /** `host:port` for PUBSUB_EMULATOR_HOST. */
  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** pid of pstest itself (not of the guard). */
  get pid(): number | undefined {
    return this.pstestPid;
  }
  private pstestPid?: number;

  async start(): Promise<this> {
    if (!existsSync(PSTEST_BIN)) throw new Error(`${PSTEST_BIN} not found: run script/bootstrap (needs go)`);
    if (!this.port) this.port = await freePort();
    const args = ['-host', '127.0.0.1', '-port', String(this.port)];
    const guarded = this.ownerPid !== 0;
    const [c, a] = guarded
      ? [process.execPath, [GUARD, String(this.ownerPid), '--', PSTEST_BIN, ...args]]
      : [PSTEST_BIN, args];
    const proc = spawn(c, a, { stdio: ['ignore', 'pipe', 'pipe'], detached: !guarded });
    this.proc = proc;
    let stderr = '';
    proc.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    await new Promise<void>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`pstest did not start in 20 s: ${stderr}`)), 20000);
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`pstest exited (${code}): ${stderr}`));
      });
      proc.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('listening on')) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    proc.removeAllListeners('exit');
    this.pstestPid = detachServer(proc, guarded);
    return this;
  }

  /** Stops the server (all state is lost); the port stays reserved in `this.port` for `start()`. */
  async stop(): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((r) => proc.once('exit', () => r()));
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 10000);
    await exited;
    clearTimeout(timer);
    this.proc = undefined;
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }
}

export const service: ServiceDef = {
  name: 'pubsub',
  available: () => existsSync(PSTEST_BIN),
  async start(ownerPid) {
    const emulator = new PubSubEmulator({ ownerPid });
    await emulator.start();
    const pid = emulator.pid;
    if (!pid) throw new Error('pstest: pid unknown');
    return {
      name: 'pubsub',
      env: { PUBSUB_EMULATOR_HOST: emulator.host },
      pids: [pid],
      dirs: [],
      signal: 'SIGTERM',
    };
  },
};
