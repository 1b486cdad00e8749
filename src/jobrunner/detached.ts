import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Config } from '../config/index.ts';
import { envName } from '../config/load.ts';
import { outcomeOfExitCode, type RunOutcome } from './run-task.ts';

/** `node <cli main>`: the CLI next to this module (src/cli/main.ts under Node 24, dist/cli/main.js when built). */
export function defaultRunTaskCommand(): string[] {
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  return [process.execPath, fileURLToPath(new URL(`../cli/main${ext}`, import.meta.url))];
}

/** Keys a detached `run-task` needs, handed over in its environment (secrets never on its argv). */
const CHILD_KEYS = [
  'pgUrl',
  'db',
  'pgHost',
  'pgPort',
  'user',
  'password',
  'stateSchema',
  'pgbossSchema',
  'logLevel',
] as const;

export function childEnv(config: Partial<Config>, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base };
  for (const key of CHILD_KEYS) {
    const v = config[key];
    if (v !== undefined && v !== null) env[envName(key)] = String(v);
    else delete env[envName(key)];
  }
  return env;
}

/** The environment of a detached run from a runner's own settings: the same database and schemas. */
export function runnerEnv(
  pgConfig: {
    connectionString?: string;
    host?: string;
    port?: number;
    database?: string;
    user?: string;
    password?: unknown;
  },
  settings: { stateSchema: string; pgbossSchema: string; logLevel?: string },
  base: NodeJS.ProcessEnv = process.env,
): NodeJS.ProcessEnv {
  const password = typeof pgConfig.password === 'string' ? pgConfig.password : undefined;
  return childEnv(
    {
      pgUrl: pgConfig.connectionString,
      pgHost: pgConfig.host,
      pgPort: pgConfig.port,
      db: pgConfig.database,
      user: pgConfig.user,
      password,
      stateSchema: settings.stateSchema,
      pgbossSchema: settings.pgbossSchema,
      logLevel: settings.logLevel as Config['logLevel'] | undefined,
    },
    base,
  );
}

export interface DetachedRun {
  pid: number;
  /** Resolves when the process exits: its outcome, or undefined (killed, crashed, code 1). */
  exited: Promise<{ outcome: RunOutcome | undefined; code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): void;
}

/**
 * Starts `tag-connector run-task --etl-context-id N` as a detached process (its own process group):
 * it outlives a daemon that dies, and keeps its run lock until it ends by itself.
 */
export function spawnRunTask(
  etlContextId: number,
  options: { command?: string[]; env: NodeJS.ProcessEnv; attempt?: number },
): DetachedRun {
  const [exe, ...pre] = options.command ?? defaultRunTaskCommand();
  const args = [...pre, 'run-task', '--etl-context-id', String(etlContextId)];
  if (options.attempt !== undefined) args.push('--attempt', String(options.attempt));
  const child = spawn(exe!, args, {
    detached: true,
    stdio: ['ignore', 'ignore', 'inherit'],
    env: options.env,
  });
  const exited = new Promise<{
    outcome: RunOutcome | undefined;
    code: number | null;
    signal: NodeJS.Signals | null;
  }>((resolve) => {
    child.once('error', () => resolve({ outcome: undefined, code: null, signal: null }));
    child.once('exit', (code, signal) =>
      resolve({ outcome: signal ? undefined : outcomeOfExitCode(code), code, signal }),
    );
  });
  return {
    pid: child.pid ?? -1,
    exited,
    kill: (signal = 'SIGTERM') => {
      try {
        child.kill(signal);
      } catch {
        /* already gone */
      }
    },
  };
}
