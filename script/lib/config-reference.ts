/**
 * Rewrites the generated part of docs/configuration.md from the config schema and the CLI's flags.
 *   npm run docs:config            rewrite it
 *   npm run docs:config -- --check exit 1 when it is stale
 */
import { readFileSync, writeFileSync } from 'node:fs';
import * as cliOptions from '../../src/cli/options.ts';
import { configReference, flagGroups, withReference } from '../../src/config/reference.ts';

const path = new URL('../../docs/configuration.md', import.meta.url);
const page = readFileSync(path, 'utf8');
const next = withReference(page, configReference(flagGroups(cliOptions)));
if (process.argv.includes('--check')) {
  if (next !== page) {
    process.stderr.write('docs/configuration.md is stale: run npm run docs:config\n');
    process.exit(1);
  }
} else if (next !== page) writeFileSync(path, next);
