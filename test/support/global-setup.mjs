// Loaded natively by Node (not through jest's transform), so the harness runs as Node 24 runs
// TypeScript: with its real `.ts` import specifiers.
export default async function globalSetup() {
  const { default: setup } = await import('./global-setup.ts');
  await setup();
}
