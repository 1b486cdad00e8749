import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { WAL2JSON_OPTIONS } from '../../src/extractor/wal2json.ts';
import { formatSummary, summariseFile, type ProfileSummary } from '../cpuprofile.ts';
import { type BenchContext, type Row, round } from '../lib/context.ts';
import { Daemon, ROOT } from '../lib/daemon.ts';
import { createBacklogTable, createSlots, currentLsn, dropSlot, loadBacklog, slotPid } from '../lib/db.ts';
import { CpuMeter, memory } from '../lib/proc.ts';

const TABLE = 'public.bench_rows';
const TX_SIZE = 2000;

/** The options the daemon starts wal2json with (bench/README: "same options"). */
export const READER_OPTIONS: Record<string, string> = { ...WAL2JSON_OPTIONS, 'add-tables': TABLE };

interface Measured {
  ms: number;
  cpuMicros: number;
  walsenderMicros: number;
  peakRss?: number;
}

/** Samples a walsender's CPU while a reader runs (the walsender exits with its reader). */
async function walsenderMeter(url: string, slot: string): Promise<{ stop(): number }> {
  const pid = await slotPid(url, slot);
  const meter = new CpuMeter(pid);
  meter.start();
  const timer = setInterval(() => meter.sample(), 50);
  return {
    stop: () => {
      clearInterval(timer);
      return meter.sample();
    },
  };
}

/** pg_recvlogical to /dev/null until the backlog's end LSN; CPU from the shell's `times`. */
async function runRecvLogical(ctx: BenchContext, slot: string, endLsn: string): Promise<Measured> {
  const u = new URL(ctx.url);
  const args = [
    ...['-h', u.hostname, '-p', u.port, '-U', 'postgres', '-d', u.pathname.slice(1)],
    ...['--slot', slot, '--start', '--endpos', endLsn, '--no-loop', '-f', '/dev/null'],
    ...Object.entries(READER_OPTIONS).flatMap(([k, v]) => ['-o', `${k}=${v}`]),
  ];
  const started = Date.now();
  const proc = spawn(
    'bash',
    ['-c', '"$@"; rc=$?; times >&2; exit $rc', 'bash', join(ctx.pgBin, 'pg_recvlogical'), ...args],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const ws = await walsenderMeter(ctx.url, slot);
  const code = await new Promise<number | null>((r) => proc.on('exit', r));
  const ms = Date.now() - started;
  const walsenderMicros = ws.stop();
  if (code !== 0) throw new Error(`pg_recvlogical exited ${code}: ${err}`);
  // `times`: line 1 = the shell, line 2 = its children ("0m1.234s 0m0.456s").
  const children = err.trim().split('\n').at(-1)!;
  const secs = [...children.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  return { ms, cpuMicros: (secs[0]! + secs[1]!) * 1e6, walsenderMicros };
}

async function runBareReader(
  ctx: BenchContext,
  slot: string,
  changes: number,
): Promise<Measured & { lastEnd: string }> {
  const proc = spawn(
    process.execPath,
    [join(ROOT, 'bench', 'bare-reader.ts'), ctx.url, slot, String(changes), JSON.stringify(READER_OPTIONS)],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const ws = await walsenderMeter(ctx.url, slot);
  let peak = 0;
  const rssTimer = setInterval(() => (peak = Math.max(peak, memory(proc.pid).hwm)), 200);
  const code = await new Promise<number | null>((r) => proc.on('exit', r));
  clearInterval(rssTimer);
  const walsenderMicros = ws.stop();
  const done = out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { ev: string; ms: number; cpuMicros: number; lastEnd: string })
    .find((m) => m.ev === 'done');
  if (code !== 0 || !done) throw new Error(`bare reader exited ${code}: ${err}`);
  return { ms: done.ms, cpuMicros: done.cpuMicros, walsenderMicros, lastEnd: done.lastEnd, peakRss: peak };
}

/** The daemon drains the slot; timed from its "streaming" log line until every sink delivered all. */
async function runDaemon(
  ctx: BenchContext,
  slot: string,
  changes: number,
  sinks: string[],
  extra: { args?: string[]; nodeArgs?: string[]; env?: NodeJS.ProcessEnv } = {},
): Promise<Measured & { window: { fromMs: number; toMs: number } }> {
  const filePath = join(ctx.tmp, `${slot}.ndjson`);
  const d = new Daemon({ pgUrl: ctx.url, slot, table: TABLE, sinks, filePath, ...extra });
  try {
    await d.waitStreaming();
    const cpu = new CpuMeter(d.pid);
    cpu.start();
    const ws = await walsenderMeter(ctx.url, slot);
    await d.waitDelivered(changes, 30 * 60_000, () => cpu.sample());
    const ms = Date.now() - d.streamingAt;
    const cpuMicros = cpu.sample();
    const walsenderMicros = ws.stop();
    const peakRss = memory(d.pid).hwm;
    const window = { fromMs: d.streamingAt - d.spawnedAt, toMs: d.streamingAt + ms - d.spawnedAt };
    return { ms, cpuMicros, walsenderMicros, peakRss, window };
  } finally {
    const code = await d.stop();
    if (code !== 0) ctx.notes.push(`daemon (${sinks.join('+')}) exited ${code} on SIGTERM`);
    rmSync(filePath, { force: true });
  }
}

export interface CatchUpResult {
  rows: Row[];
  bareRate?: number;
  fileRate?: number;
  profile?: ProfileSummary & { file: string };
}

export async function catchUp(ctx: BenchContext, opts: { profile: boolean }): Promise<CatchUpResult> {
  const n = ctx.changes;
  const extraSinks: { kind: string; args: string[]; env?: NodeJS.ProcessEnv }[] = [];
  if (ctx.env.kafkaBrokers)
    extraSinks.push({
      kind: 'kafka',
      args: ['--kafka-brokers', ctx.env.kafkaBrokers, '--topic', `bench-${Date.now()}`],
    });
  else ctx.notes.push('catch-up kafka: skipped (KAFKA_BROKERS not set; `--kafka` starts the harness broker)');
  if (ctx.env.pubsubHost)
    extraSinks.push({
      kind: 'pubsub',
      args: ['--project-id', 'bench', '--topic', `bench-${Date.now()}`],
      env: { PUBSUB_EMULATOR_HOST: ctx.env.pubsubHost },
    });
  else
    ctx.notes.push('catch-up pubsub: skipped (PUBSUB_EMULATOR_HOST not set; `--pubsub` starts the emulator)');

  const slots = [
    'cu_recv',
    'cu_bare',
    'cu_bare2',
    'cu_noop',
    'cu_stdout',
    'cu_file',
    ...extraSinks.map((s) => `cu_${s.kind}`),
  ];
  if (opts.profile) slots.push('cu_prof');
  await createBacklogTable(ctx.url, TABLE);
  await createSlots(ctx.url, slots);
  ctx.log(`loading ${n} changes in ${TX_SIZE}-row transactions`);
  const t0 = Date.now();
  const load = await loadBacklog(ctx.url, TABLE, n, TX_SIZE);
  const endLsn = await currentLsn(ctx.url);
  ctx.log(
    `loaded ${load.changes} changes / ${load.transactions} transactions in ${Date.now() - t0} ms, end ${endLsn}`,
  );

  const rows: Row[] = [];
  const row = (variant: string, m: Measured, bareRate: number | undefined, note?: string): Row => {
    const rate = n / (m.ms / 1000);
    const r: Row = {
      scenario: 'catch-up',
      variant,
      events: n,
      seconds: round(m.ms / 1000, 2),
      eventsPerSec: Math.round(rate),
      ...(bareRate ? { ratio: round(rate / bareRate, 2) } : {}),
      cpuUsPerChange: round(m.cpuMicros / n, 1),
      walsenderUsPerChange: round(m.walsenderMicros / n, 1),
      ...(m.peakRss ? { peakRssMb: Math.round(m.peakRss / 2 ** 20) } : {}),
      ...(note ? { note } : {}),
    };
    ctx.log(JSON.stringify(r));
    return r;
  };

  ctx.log('ceiling: pg_recvlogical');
  const recv = await runRecvLogical(ctx, 'cu_recv', endLsn);
  await dropSlot(ctx.url, 'cu_recv');
  ctx.log('ceiling: bare pg-logical-replication + JSON.parse');
  const bare = await runBareReader(ctx, 'cu_bare', n);
  await dropSlot(ctx.url, 'cu_bare');
  const bareRate = n / (bare.ms / 1000);
  rows.push(
    row('ceiling: pg_recvlogical → /dev/null', recv, bareRate, 'C client, no parsing; ends at --endpos'),
  );
  rows.push(row('ceiling: bare reader (pg-logical-replication + JSON.parse)', bare, bareRate));

  ctx.log('daemon: noop sink (Stream retention off): the pipeline alone');
  const noop = await runDaemon(ctx, 'cu_noop', n, ['noop'], { args: ['--stream-retention-bytes', '0'] });
  await dropSlot(ctx.url, 'cu_noop');
  rows.push(
    row('daemon → noop sink (Stream retention off)', noop, bareRate, 'decode, map, serialize, confirm'),
  );

  ctx.log('daemon: stdout sink → /dev/null');
  const stdout = await runDaemon(ctx, 'cu_stdout', n, ['stdout']);
  await dropSlot(ctx.url, 'cu_stdout');
  rows.push(
    row(
      'daemon → stdout sink (/dev/null)',
      stdout,
      bareRate,
      'stand-in for a no-op sink: checkpoint in PG per batch',
    ),
  );

  ctx.log('daemon: file sink');
  const file = await runDaemon(ctx, 'cu_file', n, ['file']);
  await dropSlot(ctx.url, 'cu_file');
  const fileRow = row('daemon → file sink (fdatasync per batch)', file, bareRate);
  rows.push(fileRow);

  // The machine is shared: a second bare-reader run after the daemon's shows how much the ceiling drifted.
  ctx.log('ceiling again: bare reader');
  const bare2 = await runBareReader(ctx, 'cu_bare2', n);
  await dropSlot(ctx.url, 'cu_bare2');
  rows.push(
    row('ceiling: bare reader, run again after the daemon', bare2, bareRate, 'drift check (shared machine)'),
  );

  for (const s of extraSinks) {
    ctx.log(`daemon: ${s.kind} sink`);
    try {
      const m = await runDaemon(ctx, `cu_${s.kind}`, n, [s.kind], { args: s.args, env: s.env });
      rows.push(row(`daemon → ${s.kind} sink`, m, bareRate));
    } catch (err) {
      ctx.notes.push(`catch-up ${s.kind}: failed: ${(err as Error).message.slice(0, 300)}`);
    }
    await dropSlot(ctx.url, `cu_${s.kind}`);
  }

  let profile: CatchUpResult['profile'];
  if (opts.profile) {
    ctx.log('profile: daemon → stdout sink under --cpu-prof');
    const dir = join(ctx.tmp, 'profile');
    mkdirSync(dir, { recursive: true });
    const m = await runDaemon(ctx, 'cu_prof', n, ['stdout'], {
      nodeArgs: ['--cpu-prof', '--cpu-prof-dir', dir],
    });
    await dropSlot(ctx.url, 'cu_prof');
    ctx.log(`profiled run: ${Math.round(n / (m.ms / 1000))} events/s (profiler overhead included)`);
    const files = readdirSync(dir)
      .filter((f) => f.endsWith('.cpuprofile'))
      .map((f) => join(dir, f))
      .sort((a, b) => statSync(b).size - statSync(a).size);
    if (files[0]) {
      // Only the catch-up itself: start-up (module loading, migrations) and shutdown are cut off.
      profile = { ...summariseFile(files[0], 25, m.window), file: files[0] };
      ctx.log(formatSummary(profile));
    } else ctx.notes.push('profile: the daemon wrote no .cpuprofile');
  }

  return { rows, bareRate, fileRate: fileRow.eventsPerSec, ...(profile ? { profile } : {}) };
}
