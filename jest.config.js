import { readdirSync, readFileSync } from 'node:fs';
// Jest runs the TypeScript sources as native ESM (node --experimental-vm-modules), compiled by
// ts-jest without type checking (tsc checks types in `npm run lint`).
const tsJest = ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json', diagnostics: false }];
const common = {
  extensionsToTreatAsEsm: ['.ts'],
  transform: { '^.+\\.ts$': tsJest },
  // tsc rewrites our `.ts` import specifiers to `.js`; map them back to the sources.
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  testEnvironment: 'node',
};
/**
 * With TEST_SERVICES naming the servers to run, the integration files needing another are left out:
 * each names what it needs in a `@services a b` docblock at its top (none: `pg`). That is the only way
 * a suite is skipped; without TEST_SERVICES a suite whose server is missing fails.
 */
function leftOut() {
  const named = process.env.TEST_SERVICES;
  if (!named) return [];
  const running = new Set(named.split(',').map((s) => s.trim()));
  const root = new URL('./test/integration/', import.meta.url);
  return readdirSync(root, { recursive: true })
    .filter((f) => String(f).endsWith('.test.ts'))
    .filter((f) => {
      const head = readFileSync(new URL(String(f), root), 'utf8').slice(0, 400);
      const needs = /@services\s+([a-z ,]+)/
        .exec(head)?.[1]
        .split(/[\s,]+/)
        .filter(Boolean) ?? ['pg'];
      return needs.some((s) => !running.has(s));
    })
    .map((f) => `<rootDir>/test/integration/${String(f).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
}

export default {
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts'] },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
      globalSetup: '<rootDir>/test/support/global-setup.mjs',
      globalTeardown: '<rootDir>/test/support/global-teardown.mjs',
      testPathIgnorePatterns: ['/node_modules/', ...leftOut()],
    },
  ],
  testTimeout: 120000,
};
