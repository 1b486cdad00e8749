/**
 * Captures the replay fixtures of bench/pipeline-replay.ts for a workload (bench/lib/workloads.ts) in
 * both output plugins' forms: a throw-away cluster, the workload's table, one slot per plugin, 400
 * changes of the workload's backlog (two insert transactions of 200 rows, then updates), then the
 * slots' messages:
 *
 *   node bench/capture-fixtures.ts wide   → bench/fixtures/wide-wal2json.txt, wide-pgoutput.txt
 *
 * wal2json messages one per line as `pg_logical_slot_get_changes` prints them (format-version 2, the
 * daemon's options); pgoutput messages (protocol 1) one per line in hex.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createDatabase, PgCluster } from '../test/support/pg.ts';
import { WAL2JSON_OPTIONS } from '../src/extractor/decode/wal2json.ts';
import { ROOT } from './lib/daemon.ts';
import { sql } from './lib/db.ts';
import { WORKLOADS } from './lib/workloads.ts';

const name = process.argv[2] ?? 'wide';
const workload = WORKLOADS[name];
if (!workload) throw new Error(`unknown workload ${name}`);
// synchronous_commit on: the SQL decoding functions read only WAL already flushed
const cluster = new PgCluster({ settings: { max_slot_wal_keep_size: -1, synchronous_commit: 'on' } });
await cluster.start();
try {
  const url = await createDatabase(cluster.url(), 'capture');
  await workload.create(url);
  await sql(url, `CREATE PUBLICATION capture FOR TABLE ${workload.table}`);
  await sql(url, `SELECT pg_create_logical_replication_slot('cap_w', 'wal2json')`);
  await sql(url, `SELECT pg_create_logical_replication_slot('cap_p', 'pgoutput')`);
  await workload.load(url, 600, 200);
  const w2jOptions = Object.entries({ ...WAL2JSON_OPTIONS, 'add-tables': workload.table }).flat();
  const w2j = await sql<{ data: string }>(
    url,
    `SELECT data FROM pg_logical_slot_get_changes('cap_w', NULL, NULL, ${w2jOptions.map((_, i) => `$${i + 1}`).join(', ')})`,
    w2jOptions,
  );
  const pgo = await sql<{ data: Buffer }>(
    url,
    `SELECT data FROM pg_logical_slot_get_binary_changes('cap_p', NULL, NULL, 'proto_version', '1', 'publication_names', 'capture')`,
  );
  const dir = join(ROOT, 'bench', 'fixtures');
  writeFileSync(join(dir, `${name}-wal2json.txt`), w2j.map((r) => r.data).join('\n') + '\n');
  writeFileSync(join(dir, `${name}-pgoutput.txt`), pgo.map((r) => r.data.toString('hex')).join('\n') + '\n');
  process.stdout.write(`${w2j.length} wal2json and ${pgo.length} pgoutput messages\n`);
} finally {
  await cluster.destroy();
}
