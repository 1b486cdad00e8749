/**
 * tag-connector benchmarks, one command: `npm run bench [-- options]`.
 *
 * Starts its own PostgreSQL (wal2json, synchronous_commit=on), then runs each scenario against the
 * daemon started from source, prints a table and writes bench/results/<date>.json. Figures that
 * matter are ratios against the bare reader measured in the same run: absolute numbers depend on the
 * machine.
 *
 *   --changes N     catch-up backlog size (default 600000)
 *   --quick         smoke run: 60k changes, short latency phases, 200k-row memory transaction
 *   --full          also the 5M-row transaction
 *   --only a,b      scenarios: catchup,profile,latency,memory,snapshot,backfill (default: all)
 *   --sinks a,b     catch-up daemon runs: noop,stdout,file,kafka,pubsub (default: all; kafka and pubsub
 *                   also need their server; their "client alone" ceilings read the file sink's events,
 *                   so they bring file along)
 *   --workloads a,b catch-up workloads: narrow,wide (default: both; bench/lib/workloads.ts)
 *   --plugins a,b   catch-up output plugins: wal2json,pgoutput (default: both; Kafka and Pub/Sub run
 *                   with the first, or BENCH_SINK_PLUGIN)
 *   --kafka         start the harness Kafka broker (test/support) when KAFKA_BROKERS is not set
 *   --pubsub        start the harness Pub/Sub emulator when PUBSUB_EMULATOR_HOST is not set
 *   --keep          keep the cluster's directory (printed) for inspection
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createDatabase, PG_BIN, PgCluster } from '../test/support/pg.ts';
import { type BenchContext, type Results, type Row } from './lib/context.ts';
import { ROOT } from './lib/daemon.ts';
import { sql } from './lib/db.ts';
import { catchUp } from './scenarios/catchup.ts';
import { latency } from './scenarios/latency.ts';
import { memoryScenario } from './scenarios/memory.ts';
import { snapshot } from './scenarios/snapshot.ts';
import { backfillScenario } from './scenarios/backfill.ts';
import { formatTable } from './lib/table.ts';

const { values } = parseArgs({
  options: {
    changes: { type: 'string' },
    quick: { type: 'boolean', default: false },
    full: { type: 'boolean', default: false },
    only: { type: 'string' },
    sinks: { type: 'string' },
    workloads: { type: 'string' },
    plugins: { type: 'string' },
    kafka: { type: 'boolean', default: false },
    pubsub: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
  },
});

const ALL = ['catchup', 'profile', 'latency', 'memory', 'snapshot', 'backfill'];
const only = new Set(values.only ? values.only.split(',').map((s) => s.trim()) : ALL);
for (const s of only)
  if (!ALL.includes(s)) throw new Error(`unknown scenario ${s} (known: ${ALL.join(', ')})`);
const SINKS = ['noop', 'stdout', 'file', 'kafka', 'pubsub'];
const sinks = new Set(values.sinks ? values.sinks.split(',').map((s) => s.trim()) : SINKS);
for (const s of sinks)
  if (!SINKS.includes(s)) throw new Error(`unknown sink ${s} (known: ${SINKS.join(', ')})`);
if (sinks.has('kafka') || sinks.has('pubsub')) sinks.add('file');
const workloads = (values.workloads ?? 'narrow,wide').split(',').map((s) => s.trim());
for (const w of workloads)
  if (w !== 'narrow' && w !== 'wide') throw new Error(`unknown workload ${w} (known: narrow, wide)`);
const plugins = (values.plugins ?? 'wal2json,pgoutput').split(',').map((s) => s.trim());
for (const p of plugins)
  if (p !== 'wal2json' && p !== 'pgoutput')
    throw new Error(`unknown plugin ${p} (known: wal2json, pgoutput)`);
const quick = values.quick;
const changes = Number(values.changes ?? (quick ? 60_000 : 600_000));

function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

async function main(): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), 'tagc-bench-'));
  const cluster = new PgCluster({
    settings: {
      synchronous_commit: 'on', // the latency scenario needs it (the harness default is off)
      max_wal_size: "'4GB'",
      checkpoint_timeout: "'30min'",
      logical_decoding_work_mem: "'64MB'",
      max_slot_wal_keep_size: -1,
    },
  });
  const services: { stop(): Promise<void> }[] = [];
  const env: BenchContext['env'] = {
    ...(process.env.KAFKA_BROKERS ? { kafkaBrokers: process.env.KAFKA_BROKERS } : {}),
    ...(process.env.PUBSUB_EMULATOR_HOST ? { pubsubHost: process.env.PUBSUB_EMULATOR_HOST } : {}),
  };
  const notes: string[] = [];
  try {
    log(`starting PostgreSQL (${PG_BIN})`);
    await cluster.start();
    for (const [flag, name, key] of [
      [values.kafka && !env.kafkaBrokers, 'kafka', 'KAFKA_BROKERS'],
      [values.pubsub && !env.pubsubHost, 'pubsub', 'PUBSUB_EMULATOR_HOST'],
    ] as const) {
      if (!flag) continue;
      const {
        startServices,
        stopAndRemove,
        services: defs,
        loadExtraServices,
      } = await import('../test/support/services.ts');
      await loadExtraServices();
      if (!defs[name]?.available()) {
        notes.push(`${name}: harness server not available here (script/bootstrap builds it)`);
        continue;
      }
      log(`starting harness ${name}`);
      const running = await startServices([name], process.pid);
      services.push({ stop: () => stopAndRemove(running) });
      const v = running[0]!.env[key];
      if (name === 'kafka' && v) {
        env.kafkaBrokers = v;
        env.kafkaPid = running[0]!.pids[0];
      }
      if (name === 'pubsub' && v) env.pubsubHost = v;
    }
    const url = await createDatabase(cluster.url(), 'bench');
    const [pgv] = await sql<{ v: string }>(url, 'SHOW server_version');
    const ctx: BenchContext = {
      adminUrl: cluster.url(),
      url,
      pgBin: PG_BIN,
      tmp,
      changes,
      sinks,
      workloads,
      plugins: plugins as ('wal2json' | 'pgoutput')[],
      quick,
      full: values.full,
      env,
      notes,
      log,
    };
    const results: Results = {
      date: new Date().toISOString(),
      machine: {
        cpus: cpus().length,
        cpuModel: cpus()[0]?.model,
        memGb: Math.round(totalmem() / 2 ** 30),
        node: process.version,
        postgres: pgv?.v,
      },
      options: { changes, quick, full: values.full, only: [...only], sinks: [...sinks], workloads, plugins },
      rows: [],
      notes,
    };
    const rows: Row[] = results.rows;

    const dir = join(ROOT, 'bench', 'results');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `${results.date.slice(0, 10)}${quick ? '-quick' : ''}.json`);
    // Saved after every scenario, so a failure late in the run keeps what was measured.
    const save = () =>
      writeFileSync(file, JSON.stringify({ ...results, table: formatTable(rows) }, null, 2) + '\n');

    if (only.has('catchup') || only.has('profile')) {
      const r = await catchUp(ctx, { profile: only.has('profile') });
      if (only.has('catchup')) rows.push(...r.rows);
      if (r.profile) results.profile = r.profile;
      save();
    }
    if (only.has('latency')) {
      rows.push(...(await latency(ctx)));
      save();
    }
    if (only.has('memory')) {
      rows.push(...(await memoryScenario(ctx)));
      save();
    }
    if (only.has('snapshot')) {
      rows.push(...(await snapshot(ctx)));
      save();
    }
    if (only.has('backfill')) {
      rows.push(...(await backfillScenario(ctx)));
      save();
    }

    const table = formatTable(rows);
    process.stdout.write('\n' + table + '\n');
    if (notes.length) process.stdout.write('\nNotes:\n' + notes.map((n) => `- ${n}`).join('\n') + '\n');
    if (results.profile) {
      process.stdout.write(
        `\nTop self time (catch-up, daemon → ${process.env.BENCH_PROFILE_SINK ?? 'file'} sink):\n`,
      );
      for (const f of results.profile.functions.slice(0, 12))
        process.stdout.write(`  ${String(f.pct).padStart(5)}%  ${f.name}  ${f.where}\n`);
    }
    save();
    log(`wrote ${file}`);
  } finally {
    await Promise.all(services.map((s) => s.stop()));
    if (values.keep) log(`kept ${cluster.dir} and ${tmp}`);
    else {
      await cluster.destroy().catch(() => undefined);
      rmSync(tmp, { recursive: true, force: true });
    }
  }
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`bench failed: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
