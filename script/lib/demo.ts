/**
 * script/demo: the extractor end to end on embedded defaults. A private PostgreSQL with wal2json,
 * a demo schema (a task table, the ETL context/event store, pg-boss jobs), a small workload, events
 * to stdout and to a file and the HTTP stream, then a summary and the console URL. It keeps running
 * until Ctrl-C, or exits after the summary with --once (0 when events arrived).
 *
 *   script/demo [--once] [--out DIR] [--sink kafka --kafka-brokers ...] [--sink pubsub --project-id ...]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { createDatabase, PgCluster } from '../../test/support/pg.ts';
import { freePort } from '../../test/support/ports.ts';
import { parseLsn } from '../../src/util/lsn.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const CLI = cliEntry();
const args = process.argv.slice(2);
const once = args.includes('--once');
const outAt = args.indexOf('--out');
const outDir = outAt >= 0 && args[outAt + 1] ? resolve(args[outAt + 1]!) : join(ROOT, 'demo-out');
// The rest goes to extract-tasks. --keep-running was the opt-in before running on became the default.
const extra = args.filter(
  (a, i) => a !== '--once' && a !== '--keep-running' && (outAt < 0 || (i !== outAt && i !== outAt + 1)),
);
const file = join(outDir, 'events.ndjson');
const children: ChildProcess[] = [];
let cluster: PgCluster | undefined;

/**
 * dist/cli/main.js when it is at least as new as every file in src/ (it starts faster: no type
 * stripping), else the sources, which Node 24 runs as they are: script/demo never waits for tsc.
 */
function cliEntry(): string {
  const dist = join(ROOT, 'dist', 'cli', 'main.js');
  if (existsSync(dist)) {
    const built = statSync(dist).mtimeMs;
    const src = join(ROOT, 'src');
    const newer = readdirSync(src, { recursive: true }).some(
      (f) => statSync(join(src, String(f))).mtimeMs > built,
    );
    if (!newer) return dist;
  }
  return join(ROOT, 'src', 'cli', 'main.ts');
}

function say(msg: string): void {
  // Bold on a terminal only: a log file or a pipe gets the plain text (URLs that can be copied).
  process.stderr.write(process.stderr.isTTY ? `\x1b[1m==> ${msg}\x1b[0m\n` : `==> ${msg}\n`);
}

async function cleanup(code: number): Promise<never> {
  const running = children.filter((c) => c.exitCode === null && c.signalCode === null);
  const exited = running.map((c) => new Promise((r) => c.once('exit', r)));
  for (const c of running) c.kill('SIGTERM');
  // The daemon drains and confirms on SIGTERM; its shutdown timeout is 8 s.
  await Promise.race([Promise.all(exited), new Promise((r) => setTimeout(r, 10_000))]);
  await cluster?.destroy().catch(() => undefined);
  process.exit(code);
}
process.on('SIGINT', () => void cleanup(0));
process.on('SIGTERM', () => void cleanup(0));

function cli(argv: string[], stdout: 'inherit' | 'ignore' = 'inherit'): ChildProcess {
  // --max-semi-space-size: the V8 flag the CLI's shebang carries (src/cli/main.ts).
  const c = spawn(process.execPath, ['--max-semi-space-size=8', CLI, ...argv], {
    stdio: ['ignore', stdout, 'pipe'],
    env: { ...process.env, TAG_CONNECTOR_LOG_LEVEL: process.env.TAG_CONNECTOR_LOG_LEVEL ?? 'warn' },
  });
  c.stderr!.on('data', (d: Buffer) => process.stderr.write(d));
  children.push(c);
  return c;
}

async function main(): Promise<void> {
  say('starting a private PostgreSQL 15 with wal2json (wal_level=logical)');
  cluster = new PgCluster();
  await cluster.start();
  const url = await createDatabase(cluster.url(), 'demo');
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  await db.query(`
    CREATE TABLE public.tasks (id bigserial PRIMARY KEY, title text NOT NULL, status text NOT NULL DEFAULT 'new',
                               workspace text NOT NULL DEFAULT 'demo', updated_at timestamptz NOT NULL DEFAULT now());
    ALTER TABLE public.tasks REPLICA IDENTITY FULL;`);

  mkdirSync(outDir, { recursive: true });
  rmSync(file, { force: true }); // the previous run's events (never the directory: --out may name any)
  const port = await freePort();
  say(`extract-tasks → stdout, ${file} and http://127.0.0.1:${port}/v1/api/ws/Stream`);
  const daemon = cli([
    'extract-tasks',
    '--pg-url',
    url,
    '--slot',
    'demo',
    '--sink',
    'stdout',
    '--sink',
    'file',
    '--file-path',
    file,
    '--serverPort',
    String(port),
    ...extra,
  ]);
  for (let i = 0; i < 100; i++) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/readyz`);
      if (r.ok) break;
    } catch {
      /* not up yet */
    }
    if (daemon.exitCode !== null) throw new Error('extract-tasks exited early');
    await new Promise((r) => setTimeout(r, 200));
  }

  say('workload: task lifecycle in public.tasks');
  for (let i = 1; i <= 5; i++) {
    await db.query(`INSERT INTO tasks (title) VALUES ($1)`, [`demo task ${i}`]);
  }
  await db.query(`UPDATE tasks SET status = 'running', updated_at = now() WHERE id <= 3`);
  await db.query(`UPDATE tasks SET status = 'done', updated_at = now() WHERE id <= 2`);
  await db.query(`DELETE FROM tasks WHERE id = 5`);

  say(
    'workload: pg-boss jobs with ETL contexts and events (tasks demo: a parent with 5 subtasks, 30% failures, retried)',
  );
  const t = cli(['tasks', 'demo', '--pg-url', url, '--subtasks', '5', '--failure-rate', '0.3'], 'ignore');
  const code = await new Promise<number | null>((r) => t.on('exit', (c) => r(c)));
  if (code !== 0) say(`tasks demo exited ${code}`);
  // Wait until everything written so far is confirmed (every sink holds it), not a fixed time.
  const { rows } = await db.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
  const target = parseLsn(rows[0]!.lsn);
  for (let i = 0; i < 100; i++) {
    const { confirmedLsn } = (await (await fetch(`http://127.0.0.1:${port}/info`)).json()) as {
      confirmedLsn: string | null;
    };
    if (confirmedLsn && parseLsn(confirmedLsn) >= target) break;
    await new Promise((r) => setTimeout(r, 100));
  }

  const info = (await (await fetch(`http://127.0.0.1:${port}/info`)).json()) as Record<string, unknown>;
  const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
  const byType = new Map<string, number>();
  for (const l of lines) {
    const t = (JSON.parse(l) as { type: string }).type;
    byType.set(t, (byType.get(t) ?? 0) + 1);
  }
  say('summary');
  process.stderr.write(
    `  events written to ${file}: ${lines.length}\n` +
      [...byType].map(([t, n]) => `    ${t.padEnd(28)} ${n}`).join('\n') +
      `\n  confirmed LSN: ${String(info.confirmedLsn)}, slot lag: ${String(info.lagBytes)} bytes\n` +
      `  sinks: ${JSON.stringify(info.sinks)}\n`,
  );
  await db.end();
  if (!once) {
    say(`console: http://127.0.0.1:${port}/console`);
    say(`stream:  curl -N -H 'Accept: text/event-stream' http://127.0.0.1:${port}/v1/api/ws/Stream`);
    say(`psql ${url}`);
    say('running until Ctrl-C (script/demo --once exits after the summary)');
    await new Promise(() => undefined);
  }
  await cleanup(lines.length > 0 ? 0 : 1);
}

main().catch(async (err) => {
  process.stderr.write(`demo failed: ${(err as Error).message}\n`);
  await cleanup(1);
});
