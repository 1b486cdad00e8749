import { describe, expect, it } from '@jest/globals';
import { MIN_NODE, nodeVersionProblem } from '../../src/cli/node-version.ts';

describe('nodeVersionProblem', () => {
  it('accepts the minimum and anything newer', () => {
    expect(nodeVersionProblem(`v${MIN_NODE.join('.')}.0`, '/x/node')).toBeNull();
    expect(nodeVersionProblem('v22.20.1', '/x/node')).toBeNull();
    expect(nodeVersionProblem('v24.11.0', '/x/node')).toBeNull();
    expect(nodeVersionProblem('v30.0.0', '/x/node')).toBeNull();
  });
  it('names the version found, the binary and the way out for an older Node', () => {
    for (const v of ['v20.19.5', 'v22.12.0', 'v22.14.9', 'v18.0.0']) {
      const msg = nodeVersionProblem(v, '/usr/bin/node');
      expect(msg).toContain(`needs Node.js >= ${MIN_NODE.join('.')}`);
      expect(msg).toContain(`${v} (/usr/bin/node)`);
      expect(msg).toContain('script/tag-connector');
    }
  });
  it('agrees with package.json engines', async () => {
    const { readFileSync } = await import('node:fs');
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      engines: { node: string };
    };
    expect(pkg.engines.node).toBe(`>=${MIN_NODE.join('.')}`);
  });
});
