// After tsc: make the CLI executable and stamp the commit so `version` works outside a git checkout.
import { execFileSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';

chmodSync(new URL('../../dist/cli/main.js', import.meta.url), 0o755);
let commit = process.env.TAG_CONNECTOR_COMMIT ?? 'unknown';
try {
  commit = execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], { stdio: ['ignore', 'pipe', 'ignore'] })
    .toString()
    .trim();
} catch {
  /* not a git checkout */
}
writeFileSync(new URL('../../dist/build-info.json', import.meta.url), JSON.stringify({ commit }) + '\n');
