import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadExtraServices, services, startServices } from './services.ts';

/**
 * Starts each test server once per jest run (unless `script/services up` already exported it) and
 * hands the addresses to the test files through the environment. TEST_SERVICES limits which start.
 */
export default async function globalSetup(): Promise<void> {
  await loadExtraServices();
  // TEST_SERVICES names the servers to run (the files needing others are left out: jest.config.js);
  // one named there that cannot start is an error. Without it every server is wanted, and one that
  // cannot start here fails the suites that need it (test/support/require-service.ts), never skips.
  const named = process.env.TEST_SERVICES;
  const requested = (named ?? Object.keys(services).join(','))
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const missing = requested.filter((s) => !services[s]?.available());
  if (named && missing.length)
    throw new Error(
      `TEST_SERVICES names ${missing.join(', ')}, which cannot start here: run script/bootstrap`,
    );
  process.env.TAG_CONNECTOR_MISSING_SERVICES = missing.join(',');
  const wanted = requested.filter((s) => !missing.includes(s));
  const envOf: Record<string, string> = {
    pg: 'PGURL',
    kafka: 'KAFKA_BROKERS',
    pubsub: 'PUBSUB_EMULATOR_HOST',
    mongo: 'MONGO_URL',
    oidc: 'OIDC_ISSUER',
    graphql: 'WORKSPACE_GRAPHQL_URL',
    registry: 'REGISTRY_URL',
  };
  const toStart = wanted.filter((s) => !(envOf[s] && process.env[envOf[s]!]));
  const running = await startServices(toStart, process.pid);
  for (const s of running) Object.assign(process.env, s.env);
  const stateFile = join(tmpdir(), `tagc-jest-${process.pid}.json`);
  writeFileSync(stateFile, JSON.stringify(running));
  process.env.TAG_CONNECTOR_JEST_STATE = stateFile;
}
