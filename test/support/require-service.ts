/** The environment variable through which each test server's address reaches the test files. */
export const SERVICE_ENV = {
  pg: 'PGURL',
  kafka: 'KAFKA_BROKERS',
  pubsub: 'PUBSUB_EMULATOR_HOST',
  mongo: 'MONGO_URL',
  oidc: 'OIDC_ISSUER',
  graphql: 'WORKSPACE_GRAPHQL_URL',
  registry: 'REGISTRY_URL',
} as const;

export type ServiceName = keyof typeof SERVICE_ENV;

/**
 * The address of a server a suite needs. A suite whose server is missing fails (it never skips): the
 * only way to leave it out is to name the servers to run, `TEST_SERVICES=pg,...`, which leaves out
 * the files whose `@services` docblock names another (jest.config.js).
 */
export function requireService(name: ServiceName): string {
  const value = process.env[SERVICE_ENV[name]];
  if (value) return value;
  const why = process.env.TAG_CONNECTOR_MISSING_SERVICES?.includes(name)
    ? 'it cannot start here (run script/bootstrap)'
    : `${SERVICE_ENV[name]} is not set`;
  throw new Error(
    `this suite needs ${name}, which is not running: ${why}. To leave such suites out, name the ` +
      `servers to run, e.g. TEST_SERVICES=pg`,
  );
}
