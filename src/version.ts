import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

function readJson(path: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

export const VERSION = String(readJson(join(root, 'package.json'))?.version ?? '0.0.0');

function packageVersion(name: string): string {
  try {
    return String(readJson(require.resolve(`${name}/package.json`))?.version ?? 'unknown');
  } catch {
    return 'unknown';
  }
}

/** The commit: from the build stamp, else from git, else TAG_CONNECTOR_COMMIT, else "unknown". */
let commitCache: string | undefined;

/** The build's commit, looked up once (`/info` asks on every request; `git rev-parse` is a process). */
export function gitCommit(): string {
  commitCache ??= lookUpCommit();
  return commitCache;
}

function lookUpCommit(): string {
  const stamp = readJson(join(root, 'dist', 'build-info.json'));
  if (stamp?.commit) return String(stamp.commit);
  if (process.env.TAG_CONNECTOR_COMMIT) return process.env.TAG_CONNECTOR_COMMIT;
  try {
    return execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'ignore'],
    })
      .toString()
      .trim();
  } catch {
    return 'unknown';
  }
}

export interface VersionInfo {
  version: string;
  commit: string;
  node: string;
  pg: string;
  pgLogicalReplication: string;
}

export function versionInfo(): VersionInfo {
  return {
    version: VERSION,
    commit: gitCommit(),
    node: process.versions.node,
    pg: packageVersion('pg'),
    pgLogicalReplication: packageVersion('pg-logical-replication'),
  };
}
