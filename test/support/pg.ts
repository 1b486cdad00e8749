import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort, waitFor } from './ports.ts';

/**
 * A private PostgreSQL cluster for tests: initdb into a temp dir, a random port on 127.0.0.1,
 * wal_level=logical, wal2json allowed. As root it runs as the `postgres` OS user (initdb refuses root).
 */

export const PG_BIN = process.env.TAG_CONNECTOR_PG_BIN ?? findPgBin();

function findPgBin(): string {
  for (const v of ['17', '16', '15']) {
    const dir = `/usr/lib/postgresql/${v}/bin`;
    if (existsSync(join(dir, 'postgres'))) return dir;
  }
  try {
    return execFileSync('pg_config', ['--bindir']).toString().trim();
  } catch {
    throw new Error('PostgreSQL server binaries not found: run script/bootstrap (installs postgresql-15)');
  }
}

const isRoot = process.getuid?.() === 0;
const GUARD = new URL('./guard.mjs', import.meta.url).pathname;

function asPg(cmd: string, args: string[]): [string, string[]] {
  return isRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
}

/** Whether this server knows `output_plugin_libraries` (PostgreSQL 15.19+ and the like). */
function knowsOutputPluginLibraries(): boolean {
  try {
    const [cmd, args] = asPg(join(PG_BIN, 'postgres'), ['--describe-config']);
    return execFileSync(cmd, args, { maxBuffer: 16 << 20 })
      .toString()
      .includes('output_plugin_libraries');
  } catch {
    return false;
  }
}

export interface PgClusterOptions {
  port?: number;
  /** Extra postgresql.conf lines. */
  settings?: Record<string, string | number>;
  /** Process whose death stops the server (defaults to this process); 0 = none (services up). */
  ownerPid?: number;
  /** Appends the server's log (stderr) to this file, across restarts (the soak keeps it). */
  logFile?: string;
}

export class PgCluster {
  readonly dir: string;
  port = 0;
  private proc?: ChildProcess;
  private readonly options: PgClusterOptions;

  constructor(options: PgClusterOptions = {}, dir?: string) {
    this.options = options;
    this.dir = dir ?? mkdtempSync(join(tmpdir(), 'tagc-pg-'));
  }

  /** Admin URL (trust auth on loopback) for a database. */
  url(db = 'postgres'): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${db}`;
  }

  async init(): Promise<this> {
    if (isRoot) chownSync(this.dir, uidOf('postgres'), gidOf('postgres'));
    const data = join(this.dir, 'data');
    if (!existsSync(join(data, 'PG_VERSION'))) {
      const [cmd, args] = asPg(join(PG_BIN, 'initdb'), [
        '-D',
        data,
        '-U',
        'postgres',
        '-A',
        'trust',
        '-E',
        'UTF8',
        '--no-sync',
      ]);
      execFileSync(cmd, args, { stdio: 'pipe' });
      this.port = this.options.port ?? (await freePort());
      const conf: Record<string, string | number> = {
        listen_addresses: "'127.0.0.1'",
        port: this.port,
        unix_socket_directories: `'${this.dir}'`,
        wal_level: 'logical',
        max_replication_slots: 64,
        max_wal_senders: 64,
        max_connections: 200,
        fsync: 'off',
        synchronous_commit: 'off',
        full_page_writes: 'off',
        shared_buffers: "'128MB'",
        wal_sender_timeout: "'60s'",
        logging_collector: 'off',
        log_min_messages: 'warning',
        ...this.options.settings,
      };
      if (knowsOutputPluginLibraries()) conf.output_plugin_libraries = "'pgoutput, test_decoding, wal2json'";
      appendFileSync(
        join(data, 'postgresql.conf'),
        '\n# tag-connector test harness\n' +
          Object.entries(conf)
            .map(([k, v]) => `${k} = ${v}`)
            .join('\n') +
          '\n',
      );
      writeFileSync(join(this.dir, 'port'), String(this.port));
      if (isRoot) execFileSync('chown', ['-R', 'postgres:postgres', this.dir]);
    }
    return this;
  }

  async start(): Promise<this> {
    if (!this.port) await this.init();
    const data = join(this.dir, 'data');
    const [cmd, args] = asPg(join(PG_BIN, 'postgres'), ['-D', data]);
    const owner = this.options.ownerPid ?? process.pid;
    const [c, a] = owner ? [process.execPath, [GUARD, String(owner), '--', cmd, ...args]] : [cmd, args];
    this.proc = spawn(c, a, { stdio: ['ignore', 'ignore', 'pipe'], detached: !owner });
    let stderr = '';
    this.proc.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    if (!owner) this.proc.unref();
    const proc = this.proc;
    await waitFor(`PostgreSQL on port ${this.port}`, async () => {
      if (proc.exitCode !== null) throw new Error(`postgres exited (${proc.exitCode}): ${stderr}`);
      const client = new pg.Client({ connectionString: this.url() });
      try {
        await client.connect();
        return true;
      } finally {
        await client.end().catch(() => undefined);
      }
    });
    this.proc.stderr?.removeAllListeners('data');
    const logFile = this.options.logFile;
    if (logFile) {
      appendFileSync(logFile, stderr);
      this.proc.stderr?.on('data', (d: Buffer) => appendFileSync(logFile, d));
    } else this.proc.stderr?.resume();
    return this;
  }

  /** Fast shutdown (or immediate, like a crash) of the server; the data directory stays. */
  async stop(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    const data = join(this.dir, 'data');
    if (!existsSync(join(data, 'postmaster.pid'))) return;
    const [cmd, args] = asPg(join(PG_BIN, 'pg_ctl'), ['-D', data, '-m', mode, '-w', 'stop']);
    try {
      execFileSync(cmd, args, { stdio: 'pipe' });
    } catch {
      /* already stopped */
    }
    this.proc = undefined;
  }

  async restart(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    await this.stop(mode);
    await this.start();
  }

  async destroy(): Promise<void> {
    await this.stop('immediate');
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function uidOf(user: string): number {
  return Number(execFileSync('id', ['-u', user]).toString().trim());
}
function gidOf(user: string): number {
  return Number(execFileSync('id', ['-g', user]).toString().trim());
}

/** A fresh database on a cluster, so tests sharing one server never see each other's tables or slots. */
export async function createDatabase(adminUrl: string, prefix = 't'): Promise<string> {
  const name = `${prefix}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return u.toString();
}

/** Drops a test database and any replication slots in it. */
export async function dropDatabase(adminUrl: string, dbUrl: string): Promise<void> {
  const name = new URL(dbUrl).pathname.slice(1);
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(
      `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = $1 AND active_pid IS NOT NULL`,
      [name],
    );
    await client
      .query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1`, [
        name,
      ])
      .catch(() => undefined);
    await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  } finally {
    await client.end();
  }
}
