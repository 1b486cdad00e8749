import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import * as cliOptions from '../../src/cli/options.ts';
import { configReference, flagGroups, withReference } from '../../src/config/reference.ts';
import { configSchema } from '../../src/config/schema.ts';

const page = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
const reference = configReference(flagGroups(cliOptions as Record<string, unknown>));

describe('docs/configuration.md', () => {
  it('is current with the config schema and the flags (npm run docs:config rewrites it)', () => {
    expect(withReference(page, reference)).toBe(page);
  });
  it('lists every schema key', () => {
    for (const key of Object.keys(configSchema.shape)) expect(reference).toContain(`\`${key}\``);
  });
  it('shows no default for a secret', () => {
    const row = reference.split('\n').find((l) => l.includes('`password`'))!;
    expect(row).toMatch(/\| `password` \| {2}\|/);
    expect(row).toContain('**Secret**');
  });
});
