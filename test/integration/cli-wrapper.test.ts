import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * script/tag-connector, the one command a user types after script/bootstrap: it runs the CLI on the
 * project's Node even when the machine's own (v20 here) comes first on PATH, from any directory, and
 * says what to do when there is no usable Node at all. (It rebuilds dist/ first when src/ is newer:
 * a no-op under script/test, which builds before jest.)
 */
const WRAPPER = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'script', 'tag-connector');
const machinePath = '/usr/local/bin:/usr/bin:/bin';

describe('script/tag-connector', () => {
  it("runs the CLI on the project's Node from anywhere, with the machine's Node first on PATH", () => {
    const r = spawnSync(WRAPPER, ['version', '--json'], {
      cwd: mkdtempSync(join(tmpdir(), 'tagc-wrapper-')),
      encoding: 'utf8',
      env: { ...process.env, PATH: machinePath },
      timeout: 110_000,
    });
    expect(r.stderr).not.toContain('needs Node.js');
    expect(r.status).toBe(0);
    const { node } = JSON.parse(r.stdout) as { node: string };
    const [major = 0, minor = 0] = node.split('.').map(Number);
    expect(major > 22 || (major === 22 && minor >= 15)).toBe(true);
  }, 120_000);

  it('without a usable Node says to run script/bootstrap', () => {
    const r = spawnSync(WRAPPER, ['version'], {
      encoding: 'utf8',
      // An empty cache: no Node 24 installed by bootstrap; the machine's Node 20 only.
      env: {
        ...process.env,
        PATH: machinePath,
        TAG_CONNECTOR_CACHE: mkdtempSync(join(tmpdir(), 'tagc-nocache-')),
      },
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(
      /no Node\.js >= 22\.15 found \(PATH has v\d+\.\d+\.\d+\): run script\/bootstrap once/,
    );
  });
});
