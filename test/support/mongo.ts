import { existsSync, mkdtempSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CACHE_DIR, type ServiceDef } from './services.ts';
import { freePort } from './ports.ts';
import { spawnServer } from './startjob/spawn.ts';

/**
 * A real MongoDB-wire server: FerretDB v1 with its SQLite backend, built by
 * script/bootstrap.d/30-ferretdb into the cache (or TAG_CONNECTOR_FERRETDB_BIN). Each run gets its own
 * data directory. MONGO_URL points at it.
 */
export const FERRETDB_VERSION = process.env.FERRETDB_VERSION ?? 'v1.24.0';
export const FERRETDB_BIN =
  process.env.TAG_CONNECTOR_FERRETDB_BIN ??
  join(CACHE_DIR, `ferretdb-${FERRETDB_VERSION}`, 'bin', 'ferretdb');

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port }, () => {
      s.end();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

export const service: ServiceDef = {
  name: 'mongo',
  available: () => existsSync(FERRETDB_BIN),
  async start(ownerPid) {
    if (!existsSync(FERRETDB_BIN))
      throw new Error(`FerretDB is not built: run script/bootstrap (script/bootstrap.d/30-ferretdb)`);
    const dir = mkdtempSync(join(tmpdir(), 'tagc-ferretdb-'));
    const [port, debugPort] = [await freePort(), await freePort()];
    const args = [
      '--handler=sqlite',
      `--sqlite-url=file:${dir}/`,
      `--state-dir=${dir}`,
      `--listen-addr=127.0.0.1:${port}`,
      `--debug-addr=127.0.0.1:${debugPort}`,
      '--telemetry=disable',
      '--log-level=warn',
    ];
    const { pid, logDir } = await spawnServer('FerretDB', FERRETDB_BIN, args, ownerPid, () =>
      listening(port),
    );
    return {
      name: 'mongo',
      env: { MONGO_URL: `mongodb://127.0.0.1:${port}/` },
      pids: [pid],
      dirs: [dir, logDir],
    };
  },
};
