import type { ServiceDef } from './services.ts';
import { freePort } from './ports.ts';
import { httpOk, spawnServer } from './startjob/spawn.ts';

/** A real GraphQL server (graphql-yoga) with a synthetic workspace; see startjob/graphql-server.ts. */
export const service: ServiceDef = {
  name: 'graphql',
  available: () => true,
  async start(ownerPid) {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const script = new URL('./startjob/graphql-server.ts', import.meta.url).pathname;
    const { pid, logDir } = await spawnServer(
      'GraphQL server',
      process.execPath,
      ['--no-warnings', script, String(port)],
      ownerPid,
      () => httpOk(`${base}/healthz`),
    );
    // Tests address their own workspace: `${WORKSPACE_GRAPHQL_URL}` is the base; see workspaceUrl().
    return { name: 'graphql', env: { WORKSPACE_GRAPHQL_URL: base }, pids: [pid], dirs: [logDir] };
  },
};
