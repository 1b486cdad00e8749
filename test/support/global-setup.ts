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
  const wanted = (process.env.TEST_SERVICES ?? Object.keys(services).join(','))
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s && services[s]?.available());
  const envOf: Record<string, string> = {
    pg: 'PGURL',
    kafka: 'KAFKA_BROKERS',
    pubsub: 'PUBSUB_EMULATOR_HOST',
    mongo: 'MONGO_URL',
    oidc: 'OIDC_ISSUER',
    graphql: 'WORKSPACE_GRAPHQL_URL',
  };
  const toStart = wanted.filter((s) => !(envOf[s] && process.env[envOf[s]!]));
  const running = await startServices(toStart, process.pid);
  for (const s of running) Object.assign(process.env, s.env);
  const stateFile = join(tmpdir(), `tagc-jest-${process.pid}.json`);
  writeFileSync(stateFile, JSON.stringify(running));
  process.env.TAG_CONNECTOR_JEST_STATE = stateFile;
}
