import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.ts';
import { detachServer } from './server-process.ts';
import { CACHE_DIR, type ServiceDef } from './services.ts';

/**
 * Apicurio Registry (script/bootstrap.d/70-apicurio: the Quarkus app from Maven Central) on a loopback
 * port, in-memory storage (its default: an H2 database in memory), a small heap. Tests speak to its
 * Confluent-compatible API: REGISTRY_URL is `http://127.0.0.1:<port>/apis/ccompat/v7`.
 */

export const APICURIO_VERSION = '3.3.3';
export const APICURIO_HOME = join(CACHE_DIR, `apicurio-${APICURIO_VERSION}`);
const GUARD = new URL('./guard.mjs', import.meta.url).pathname;

function majorOf(java: string): number {
  const r = spawnSync(java, ['-version'], { encoding: 'utf8' });
  if (r.status !== 0) return 0;
  return Number(/version "(\d+)/.exec(r.stderr)?.[1] ?? 0);
}

/** A java of version 21 or newer: the default one, else a JDK in /usr/lib/jvm (Temurin 25 here). */
export function registryJava(): string | undefined {
  if (majorOf('java') >= 21) return 'java';
  const jvms = existsSync('/usr/lib/jvm') ? readdirSync('/usr/lib/jvm').sort().reverse() : [];
  for (const d of jvms) {
    const java = join('/usr/lib/jvm', d, 'bin', 'java');
    if (existsSync(java) && majorOf(java) >= 21) return java;
  }
  return undefined;
}

export class ApicurioRegistry {
  port = 0;
  private proc?: ChildProcess;
  private readonly ownerPid: number;
  readonly dir = mkdtempSync(join(tmpdir(), 'tagc-registry-'));

  constructor(ownerPid = process.pid) {
    this.ownerPid = ownerPid;
  }

  /** The Confluent-compatible API's base URL. */
  get url(): string {
    return `http://127.0.0.1:${this.port}/apis/ccompat/v7`;
  }

  get pid(): number | undefined {
    return this.registryPid;
  }
  private registryPid?: number;

  async start(): Promise<this> {
    const jar = join(APICURIO_HOME, 'quarkus-run.jar');
    if (!existsSync(join(APICURIO_HOME, '.complete')))
      throw new Error(`Apicurio Registry not found in ${APICURIO_HOME}: run script/bootstrap (needs mvn)`);
    const java = registryJava();
    if (!java) throw new Error('Apicurio Registry needs Java >= 21: none found (java, /usr/lib/jvm/*)');
    this.port = await freePort();
    const args = [
      '-Xms64m',
      '-Xmx384m',
      '-XX:+UseSerialGC',
      '-XX:TieredStopAtLevel=1',
      '-Djava.awt.headless=true',
      `-Djava.io.tmpdir=${this.dir}`,
      '-Dquarkus.http.host=127.0.0.1',
      `-Dquarkus.http.port=${this.port}`,
      // its management interface (health, metrics) would listen on 0.0.0.0:9000
      '-Dquarkus.management.host=127.0.0.1',
      `-Dquarkus.management.port=${await freePort()}`,
      '-Dquarkus.log.level=WARN',
      '-Dquarkus.log.category."io.quarkus".level=INFO',
      '-jar',
      jar,
    ];
    const guarded = this.ownerPid !== 0;
    const [c, a] = guarded
      ? [process.execPath, [GUARD, String(this.ownerPid), '--', java, ...args]]
      : [java, args];
    const proc = spawn(c, a, { stdio: ['ignore', 'pipe', 'pipe'], detached: !guarded, cwd: this.dir });
    this.proc = proc;
    let output = '';
    const keep = (d: Buffer) => (output = (output + d.toString()).slice(-4000));
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    let exited: number | null | undefined;
    proc.once('exit', (code) => (exited = code));
    const deadline = Date.now() + 120_000;
    for (;;) {
      if (exited !== undefined) throw new Error(`Apicurio Registry exited (${exited}) at start:\n${output}`);
      const res = await fetch(`${this.url}/subjects`).catch(() => undefined);
      if (res?.ok) break;
      if (Date.now() > deadline) {
        proc.kill('SIGKILL');
        throw new Error(`Apicurio Registry did not answer in 120 s:\n${output}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    this.registryPid = detachServer(proc, guarded);
    return this;
  }

  async stop(): Promise<void> {
    const proc = this.proc;
    if (proc && proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise<void>((r) => proc.once('exit', () => r()));
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 10000);
      await exited;
      clearTimeout(timer);
    }
    this.proc = undefined;
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export const service: ServiceDef = {
  name: 'registry',
  available: () => existsSync(join(APICURIO_HOME, '.complete')) && registryJava() !== undefined,
  async start(ownerPid) {
    const registry = await new ApicurioRegistry(ownerPid).start();
    const pid = registry.pid;
    if (!pid) throw new Error('apicurio: pid unknown');
    return { name: 'registry', env: { REGISTRY_URL: registry.url }, pids: [pid], dirs: [registry.dir] };
  },
};
