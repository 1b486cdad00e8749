/**
 * Interleaved A/B of daemon variants on one catch-up backlog: CPU per change is what a change of the
 * code is judged by on a shared machine (wall-clock rates move with the other processes; CPU time
 * far less), and interleaving the variants round by round spreads the machine's drift over all of
 * them. The bare reader runs in every round too, so each variant's CPU is also a ratio to it.
 *
 *   node bench/ab.ts [--workload wide|narrow] [--changes 100000] [--rounds 3] [--plugins a,b]
 *                    [--sink file|noop] [--variant name=/path/to/src/cli/main.ts[ node flags...]]...
 *
 * A variant is a name, the CLI entry of a source tree (e.g. a `git worktree` or `git archive` of the
 * commit to compare with, its node_modules linked), optional extra node flags and, after ` -- `,
 * extra daemon flags (`--variant "r0=src/cli/main.ts -- --stream-retention-bytes 0"`); without any, the
 * variant "this" is this tree. Prints one JSON line per run and a summary (median per variant).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createDatabase, PG_BIN, PgCluster } from '../test/support/pg.ts';
import { WAL2JSON_OPTIONS } from '../src/extractor/decode/wal2json.ts';
import type { BenchContext } from './lib/context.ts';
import { ROOT } from './lib/daemon.ts';
import { createSlots, dropSlot, sql } from './lib/db.ts';
import { WORKLOADS } from './lib/workloads.ts';
import { runBareReader, runDaemon, type Backlog, type Plugin } from './scenarios/catchup.ts';

const { values } = parseArgs({
  options: {
    workload: { type: 'string', default: 'wide' },
    changes: { type: 'string', default: '100000' },
    rounds: { type: 'string', default: '3' },
    plugins: { type: 'string', default: 'wal2json,pgoutput' },
    sink: { type: 'string', default: 'file' },
    variant: { type: 'string', multiple: true },
  },
});

const workload = WORKLOADS[values.workload]!;
const n = Number(values.changes);
const rounds = Number(values.rounds);
const plugins = values.plugins.split(',') as Plugin[];
const sink = values.sink;
const variants = (values.variant ?? [`this=${join(ROOT, 'src', 'cli', 'main.ts')}`]).map((v) => {
  const [name, rest] = v.split(/=(.*)/s) as [string, string];
  const [node, daemon] = rest.split(' -- ') as [string, string | undefined];
  const [cli, ...nodeArgs] = node.split(' ').filter(Boolean);
  return { name, cli: cli!, nodeArgs, args: daemon?.split(' ').filter(Boolean) ?? [] };
});

const log = (msg: string) => process.stderr.write(`[ab ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
const tmp = mkdtempSync(join(tmpdir(), 'tagc-ab-'));
const cluster = new PgCluster({
  settings: { max_wal_size: "'4GB'", logical_decoding_work_mem: "'64MB'", max_slot_wal_keep_size: -1 },
});
await cluster.start();
try {
  const url = await createDatabase(cluster.url(), 'ab');
  const ctx = { url, pgBin: PG_BIN, tmp, env: {}, notes: [], log } as unknown as BenchContext;
  const b: Backlog = {
    workload,
    readerOptions: { ...WAL2JSON_OPTIONS, 'add-tables': workload.table },
    publication: `ab_${workload.name}`,
    prefix: `ab_`,
  };
  await workload.create(url);
  await sql(url, `CREATE PUBLICATION ${b.publication} FOR TABLE ${workload.table}`);
  const slot = (what: string, p: Plugin, r: number) => `ab_${what}_${p === 'pgoutput' ? 'pg' : 'wj'}_${r}`;
  for (const p of plugins)
    await createSlots(
      url,
      Array.from({ length: rounds }, (_, r) => [
        slot('bare', p, r),
        ...variants.map((v) => slot(v.name.replace(/\W/g, '_'), p, r)),
      ]).flat(),
      p,
    );
  log(`loading ${n} ${workload.name} changes`);
  await workload.load(url, n, 2000);
  const results: { variant: string; plugin: Plugin; cpu: number; rate: number; load: number }[] = [];
  for (let r = 0; r < rounds; r++) {
    for (const p of plugins) {
      const load = loadavg()[0]!;
      const bare = await runBareReader(ctx, b, p, slot('bare', p, r), n);
      await dropSlot(url, slot('bare', p, r));
      const bareRow = {
        variant: 'bare',
        plugin: p,
        cpu: bare.cpuMicros / n,
        rate: n / (bare.ms / 1000),
        load,
      };
      results.push(bareRow);
      log(JSON.stringify(bareRow));
      // a different order each round: no variant always runs right after the bare reader
      const order = variants.map((_, i) => variants[(i + r) % variants.length]!);
      for (const v of order) {
        const s = slot(v.name.replace(/\W/g, '_'), p, r);
        const load2 = loadavg()[0]!;
        const m = await runDaemon(ctx, b, p, s, n, [sink], {
          cli: v.cli,
          nodeArgs: v.nodeArgs,
          args: [...(sink === 'noop' ? ['--stream-retention-bytes', '0'] : []), ...v.args],
        });
        await dropSlot(url, s);
        const row = {
          variant: v.name,
          plugin: p,
          cpu: m.cpuMicros / n,
          rate: n / (m.ms / 1000),
          load: load2,
        };
        results.push(row);
        log(JSON.stringify({ ...row, busy: m.busy, peakRssMb: Math.round((m.peakRss ?? 0) / 2 ** 20) }));
      }
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, c) => a - c)[Math.floor(xs.length / 2)]!;
  const fmt = (x: number) => x.toFixed(1);
  for (const p of plugins) {
    const bare = results.filter((x) => x.plugin === p && x.variant === 'bare');
    const bareCpu = median(bare.map((x) => x.cpu));
    console.log(
      `${workload.name} ${p} bare reader: ${fmt(bareCpu)} µs/change, ${Math.round(median(bare.map((x) => x.rate)))}/s`,
    );
    for (const v of variants) {
      const xs = results.filter((x) => x.plugin === p && x.variant === v.name);
      const cpus = xs.map((x) => x.cpu);
      console.log(
        `${workload.name} ${p} ${v.name} → ${sink}: ${fmt(median(cpus))} µs/change (${cpus.map(fmt).join(', ')}), ` +
          `${(median(cpus) / bareCpu).toFixed(2)}× bare, ${Math.round(median(xs.map((x) => x.rate)))}/s, ` +
          `load ${xs.map((x) => x.load.toFixed(1)).join('/')}`,
      );
    }
  }
  const wal = results.filter((x) => x.plugin === 'wal2json');
  const pgo = results.filter((x) => x.plugin === 'pgoutput');
  if (wal.length && pgo.length)
    for (const v of variants)
      console.log(
        `${v.name}: pgoutput/wal2json rate ${(median(pgo.filter((x) => x.variant === v.name).map((x) => x.rate)) / median(wal.filter((x) => x.variant === v.name).map((x) => x.rate))).toFixed(2)}`,
      );
} finally {
  await cluster.stop();
  rmSync(tmp, { recursive: true, force: true });
}
