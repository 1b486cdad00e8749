import { execFile } from 'node:child_process';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** schemathesis' CLI as script/bootstrap installs it (a venv under the tool cache). */
const ST = join(
  process.env.TAG_CONNECTOR_CACHE ?? join(homedir(), '.cache', 'tag-connector'),
  'venv-schemathesis',
  'bin',
  'st',
);

/**
 * Runs schemathesis with all its checks against `${base}/openapi.json` as the holder of `token`, and
 * returns its output; a failing run throws with the output's tail (a failure prints its seed, and
 * FUZZ_SEED=<seed> replays that run).
 */
export async function runSchemathesis(
  base: string,
  o: { token: string; maxExamples: number; extraArgs?: string[] },
): Promise<string> {
  const args = [
    '--config-file',
    fileURLToPath(new URL('./schemathesis.toml', import.meta.url)),
    'run',
    `${base}/openapi.json`,
    '-H',
    `Authorization: Bearer ${o.token}`,
    '--checks',
    'all',
    ...(o.extraArgs ?? []),
    '--max-examples',
    String(o.maxExamples),
    '--request-timeout',
    '20',
    '--no-color',
    '--phases',
    'examples,coverage,fuzzing',
  ];
  if (process.env.FUZZ_SEED) args.push('--seed', process.env.FUZZ_SEED);
  try {
    const r = await run(ST, args, { timeout: 180_000, maxBuffer: 16 << 20 });
    return r.stdout + r.stderr;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(
      `schemathesis failed: ${e.message}\n${(e.stdout ?? '').slice(-4000)}\n${(e.stderr ?? '').slice(-2000)}`,
    );
  }
}
