/**
 * The test servers, started once per run on loopback. Each service starts, says which env vars reach
 * it (`PGURL`, later `KAFKA_BROKERS`, `PUBSUB_EMULATOR_HOST`, ...) and stops. Used by jest's global
 * setup and by `script/services up|down` for work by hand.
 *
 *   node test/support/services.ts up pg kafka     # prints export lines for eval
 *   node test/support/services.ts down
 */
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PgCluster } from './pg.ts';

export interface RunningService {
  name: string;
  env: Record<string, string>;
  /** How to stop it later from another process. */
  pids: number[];
  dirs: string[];
  /** Signal that stops it cleanly (PostgreSQL: SIGINT = fast shutdown). */
  signal?: NodeJS.Signals;
}

export interface ServiceDef {
  name: string;
  /** Whether the service can start here (binaries built/cached); bootstrap installs them. */
  available(): boolean;
  start(ownerPid: number): Promise<RunningService>;
}

export const CACHE_DIR = process.env.TAG_CONNECTOR_CACHE ?? join(homedir(), '.cache', 'tag-connector');

const pgService: ServiceDef = {
  name: 'pg',
  available: () => true,
  async start(ownerPid) {
    const cluster = new PgCluster({ ownerPid });
    await cluster.start();
    const pid = Number(readFileSync(join(cluster.dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
    return {
      name: 'pg',
      env: { PGURL: cluster.url(), TAG_CONNECTOR_PG_DIR: cluster.dir },
      pids: [pid],
      dirs: [cluster.dir],
      signal: 'SIGINT',
    };
  },
};

/** Registry; other services register themselves from their own modules (see extraServices). */
export const services: Record<string, ServiceDef> = { pg: pgService };

export async function loadExtraServices(): Promise<void> {
  for (const mod of [
    './kafka.ts',
    './pubsub.ts',
    './mongo.ts',
    './oidc.ts',
    './graphql.ts',
    './registry.ts',
  ]) {
    const path = new URL(mod, import.meta.url);
    if (!existsSync(path)) continue;
    const m = (await import(fileURLToPath(path))) as { service?: ServiceDef };
    if (m.service) services[m.service.name] = m.service;
  }
}

export async function startServices(names: string[], ownerPid: number): Promise<RunningService[]> {
  await loadExtraServices();
  const unknown = names.filter((n) => !services[n]);
  if (unknown.length)
    throw new Error(`unknown service(s): ${unknown.join(', ')} (known: ${Object.keys(services).join(', ')})`);
  return Promise.all(names.map((n) => services[n]!.start(ownerPid)));
}

/** Signals every service's processes (each its own stopping signal unless `signal` is given). */
export function stopRunning(running: RunningService[], signal?: NodeJS.Signals): void {
  for (const s of running) {
    for (const pid of s.pids) {
      try {
        process.kill(pid, signal ?? s.signal ?? 'SIGTERM');
      } catch {
        /* gone */
      }
    }
  }
}

/** Whether process `pid` is still there. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Stops the services and removes their data dirs once their processes are gone (up to `waitMs`): a dir
 * removed under a broker that is still shutting down comes back half written, and a run that never
 * removed its dirs left ~300 MB per Kafka broker in the temp dir (bench runs filled a disk so).
 */
export async function stopAndRemove(running: RunningService[], waitMs = 15_000): Promise<void> {
  stopRunning(running);
  const pids = running.flatMap((s) => s.pids);
  const deadline = Date.now() + waitMs;
  while (pids.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  if (pids.some(alive)) stopRunning(running, 'SIGKILL');
  for (const s of running) for (const d of s.dirs) rmSync(d, { recursive: true, force: true });
}

/** Prefixes of the temp dirs the harness, the tests and the bench create (mkdtemp). */
const TEMP_PREFIX = 'tagc-';

/**
 * Removes the harness's temp dirs that no process uses any more: left behind by killed runs. A dir is
 * in use when a live process has it (or a path under it) on its command line or as its working dir,
 * or it changed in the last `minAgeMinutes`.
 */
export function pruneTempDirs(minAgeMinutes = 60): { removed: string[]; kept: string[] } {
  const tmp = tmpdir();
  // the temp dir as configured (TMPDIR), not a literal /tmp: else dirs in use would look unused
  const inside = new RegExp(`${tmp.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/(${TEMP_PREFIX}[^/\\s]+)`, 'g');
  const inUse = new Set<string>();
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
      const cwd = readlinkSync(`/proc/${pid}/cwd`);
      for (const m of `${cmd} ${cwd}`.matchAll(inside)) inUse.add(m[1]!);
    } catch {
      /* gone, or not ours to read */
    }
  }
  const removed: string[] = [];
  const kept: string[] = [];
  const cutoff = Date.now() - minAgeMinutes * 60_000;
  for (const name of readdirSync(tmp).filter((n) => n.startsWith(TEMP_PREFIX))) {
    const dir = join(tmp, name);
    let recent = false;
    try {
      const st = statSync(dir);
      recent = st.mtimeMs > cutoff || readdirSync(dir).some((c) => statSync(join(dir, c)).mtimeMs > cutoff);
    } catch {
      continue;
    }
    if (inUse.has(name) || recent) kept.push(dir);
    else {
      rmSync(dir, { recursive: true, force: true });
      removed.push(dir);
    }
  }
  return { removed, kept };
}

const STATE = join(CACHE_DIR, 'services', 'state.json');

async function main(argv: string[]): Promise<void> {
  const [verb, ...names] = argv;
  if (verb === 'up') {
    await loadExtraServices();
    const wanted = names.length ? names : Object.keys(services).filter((n) => services[n]!.available());
    const running = await startServices(wanted, 0);
    mkdirSync(join(CACHE_DIR, 'services'), { recursive: true });
    const prev: RunningService[] = existsSync(STATE) ? JSON.parse(readFileSync(STATE, 'utf8')) : [];
    writeFileSync(STATE, JSON.stringify([...prev, ...running], null, 2));
    for (const s of running)
      for (const [k, v] of Object.entries(s.env)) process.stdout.write(`export ${k}=${v}\n`);
    process.exit(0);
  } else if (verb === 'down') {
    // Several people (or agents) may share one machine: by default stop only the servers this shell
    // uses (their exported env matches), `down NAME...` those services, `down --all` everything.
    const all: RunningService[] = existsSync(STATE) ? JSON.parse(readFileSync(STATE, 'utf8')) : [];
    const mine = (s: RunningService) => Object.entries(s.env).some(([k, v]) => process.env[k] === v);
    const chosen = names.includes('--all')
      ? all
      : names.length
        ? all.filter((s) => names.includes(s.name))
        : all.filter(mine);
    await stopAndRemove(chosen);
    const left = all.filter((s) => !chosen.includes(s));
    if (left.length) writeFileSync(STATE, JSON.stringify(left, null, 2));
    else rmSync(STATE, { force: true });
    process.stderr.write(
      `stopped ${chosen.map((s) => s.name).join(', ') || 'nothing'}` +
        (left.length
          ? `; still running: ${left.map((s) => s.name).join(', ')} (down --all stops them)`
          : '') +
        '\n',
    );
  } else if (verb === 'prune') {
    const minutes = names[0] === undefined ? 60 : Number(names[0]);
    if (!Number.isFinite(minutes) || minutes < 0) {
      process.stderr.write('usage: script/services prune [MINUTES] (default 60)\n');
      process.exit(2);
    }
    const { removed, kept } = pruneTempDirs(minutes);
    for (const d of removed) process.stderr.write(`removed ${d}\n`);
    process.stderr.write(
      `pruned ${removed.length} temp dirs, kept ${kept.length} (in use or newer than ${minutes} min)\n`,
    );
  } else if (verb === 'status') {
    process.stdout.write(existsSync(STATE) ? readFileSync(STATE, 'utf8') : '[]\n');
  } else {
    process.stderr.write(
      'usage: script/services up [pg kafka pubsub mongo oidc graphql registry] | down [NAME...|--all] | status | prune [MINUTES]\n',
    );
    process.exit(2);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).catch((err) => {
    process.stderr.write(`services: ${(err as Error).message}\n`);
    process.exit(1);
  });
}
