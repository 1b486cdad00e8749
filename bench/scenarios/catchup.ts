import { spawn, spawnSync } from 'node:child_process';
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
  /** CPU of the harness Kafka broker over the run (when the bench started it). */
  brokerMicros?: number;
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
  settleDisk();
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
  settleDisk();
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

/** Events per Kafka transaction: the sink writes one per runner batch, `batchSize` (default 2000). */
const KAFKA_TX_EVENTS = 2000;

/**
 * The "Kafka client alone" ceiling (bench/kafka-alone.ts): the daemon's events (the file sink's output
 * of this run) produced by @platformatic/kafka with the sink's producer settings and transactions.
 */
async function runKafkaAlone(
  ctx: BenchContext,
  brokers: string,
  file: string,
  events: number,
): Promise<Measured> {
  const proc = spawn(
    process.execPath,
    [join(ROOT, 'bench', 'kafka-alone.ts'), brokers, file, String(events), String(KAFKA_TX_EVENTS)],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  let peak = 0;
  const rssTimer = setInterval(() => (peak = Math.max(peak, memory(proc.pid).hwm)), 200);
  // from spawn to exit: topic creation and the warm-up count towards the broker's figure too
  const broker = new CpuMeter(ctx.env.kafkaPid);
  broker.start();
  const code = await new Promise<number | null>((r) => proc.on('exit', r));
  clearInterval(rssTimer);
  const brokerMicros = ctx.env.kafkaPid ? broker.sample() : undefined;
  const done = out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { ev: string; events: number; ms: number; cpuMicros: number })
    .find((m) => m.ev === 'done');
  if (code !== 0 || !done) throw new Error(`kafka alone exited ${code}: ${err.slice(-2000)}`);
  if (done.events !== events) ctx.notes.push(`kafka alone: produced ${done.events} of ${events} events`);
  return { ms: done.ms, cpuMicros: done.cpuMicros, walsenderMicros: 0, brokerMicros, peakRss: peak };
}

/** The daemon drains the slot; timed from its "streaming" log line until every sink delivered all. */
/**
 * Flushes dirty pages before a reader starts: the backlog's load and the previous run's file writes
 * are otherwise still being written back while the next reader runs, and a file-writing daemon's
 * system CPU then varied 0.6–1.1 s per 600k changes between otherwise identical runs.
 */
function settleDisk(): void {
  spawnSync('sync', { stdio: 'ignore' });
}

async function runDaemon(
  ctx: BenchContext,
  slot: string,
  changes: number,
  sinks: string[],
  extra: { args?: string[]; nodeArgs?: string[]; env?: NodeJS.ProcessEnv; keepFile?: boolean } = {},
): Promise<Measured & { window: { fromMs: number; toMs: number } }> {
  const filePath = join(ctx.tmp, `${slot}.ndjson`);
  const { keepFile, ...options } = extra;
  settleDisk();
  const d = new Daemon({ pgUrl: ctx.url, slot, table: TABLE, sinks, filePath, ...options });
  try {
    await d.waitStreaming();
    const cpu = new CpuMeter(d.pid);
    cpu.start();
    const broker = new CpuMeter(ctx.env.kafkaPid);
    broker.start();
    const ws = await walsenderMeter(ctx.url, slot);
    await d.waitDelivered(changes, 30 * 60_000, () => cpu.sample());
    const ms = Date.now() - d.streamingAt;
    const cpuMicros = cpu.sample();
    const brokerMicros = sinks.includes('kafka') && ctx.env.kafkaPid ? broker.sample() : undefined;
    const walsenderMicros = ws.stop();
    const peakRss = memory(d.pid).hwm;
    const window = { fromMs: d.streamingAt - d.spawnedAt, toMs: d.streamingAt + ms - d.spawnedAt };
    return { ms, cpuMicros, walsenderMicros, brokerMicros, peakRss, window };
  } finally {
    const code = await d.stop();
    if (code !== 0) ctx.notes.push(`daemon (${sinks.join('+')}) exited ${code} on SIGTERM`);
    if (!keepFile) rmSync(filePath, { force: true });
  }
}

/**
 * The Kafka sink against its own ceiling: the Kafka client alone producing the same events (run before
 * and after the daemon; the faster run counts) and the bare reader: the daemon's ratio is against the
 * lower of the two, since neither PostgreSQL reading nor Kafka producing can go faster than alone.
 */
async function kafkaRows(
  ctx: BenchContext,
  args: string[],
  eventsFile: string,
  bareRate: number,
  row: (variant: string, m: Measured, ceiling: number | undefined, note?: string) => Row,
): Promise<Row[]> {
  const n = ctx.changes;
  const brokers = ctx.env.kafkaBrokers!;
  const rows: Row[] = [];
  const aloneRates: number[] = [];
  const alone = async (when: string) => {
    ctx.log(`ceiling: Kafka client alone (${when})`);
    try {
      const m = await runKafkaAlone(ctx, brokers, eventsFile, n);
      aloneRates.push(n / (m.ms / 1000));
      const r = row(
        `ceiling: Kafka client alone (${when})`,
        m,
        bareRate,
        `@platformatic/kafka producing the daemon's events with the sink's settings, ${KAFKA_TX_EVENTS}-event transactions`,
      );
      delete r.walsenderUsPerChange;
      rows.push(r);
    } catch (err) {
      ctx.notes.push(`catch-up kafka alone (${when}): failed: ${(err as Error).message.slice(0, 300)}`);
    }
  };
  try {
    await alone('before the daemon');
    ctx.log('daemon: kafka sink');
    let daemon: Measured | undefined;
    try {
      daemon = await runDaemon(ctx, 'cu_kafka', n, ['kafka'], { args });
    } catch (err) {
      ctx.notes.push(`catch-up kafka: failed: ${(err as Error).message.slice(0, 300)}`);
    }
    await alone('after the daemon');
    if (daemon) {
      const kafkaAlone = aloneRates.length ? Math.max(...aloneRates) : undefined;
      const ceiling = Math.min(bareRate, kafkaAlone ?? Infinity);
      const rate = n / (daemon.ms / 1000);
      rows.push(
        row(
          'daemon → kafka sink (exactly-once)',
          daemon,
          ceiling,
          kafkaAlone === undefined
            ? 'ratio against the bare reader (Kafka alone failed)'
            : `ratio against min(bare reader, Kafka alone) = ${Math.round(ceiling).toLocaleString('en-US')}/s; ` +
                `${round(rate / bareRate, 2)} of the bare reader, ${round(rate / kafkaAlone, 2)} of Kafka alone`,
        ),
      );
    }
  } finally {
    rmSync(eventsFile, { force: true });
  }
  return rows;
}

export interface CatchUpResult {
  rows: Row[];
  bareRate?: number;
  profile?: ProfileSummary & { file: string };
}

export async function catchUp(ctx: BenchContext, opts: { profile: boolean }): Promise<CatchUpResult> {
  const n = ctx.changes;
  const extraSinks: { kind: string; args: string[]; env?: NodeJS.ProcessEnv }[] = [];
  const wanted = ctx.sinks;
  if (ctx.env.kafkaBrokers && wanted.has('kafka'))
    extraSinks.push({
      kind: 'kafka',
      // topics of their own: a broker reused across runs keeps an older run's checkpoint of this slot
      args: [
        ...['--kafka-brokers', ctx.env.kafkaBrokers, '--topic', `bench-${Date.now()}`],
        ...['--kafka-checkpoint-topic', `bench-checkpoints-${Date.now()}`],
      ],
    });
  else if (wanted.has('kafka'))
    ctx.notes.push('catch-up kafka: skipped (KAFKA_BROKERS not set; `--kafka` starts the harness broker)');
  if (ctx.env.pubsubHost && wanted.has('pubsub'))
    extraSinks.push({
      kind: 'pubsub',
      args: ['--project-id', 'bench', '--topic', `bench-${Date.now()}`],
      env: { PUBSUB_EMULATOR_HOST: ctx.env.pubsubHost },
    });
  else if (wanted.has('pubsub'))
    ctx.notes.push('catch-up pubsub: skipped (PUBSUB_EMULATOR_HOST not set; `--pubsub` starts the emulator)');

  const slots = [
    'cu_recv',
    'cu_bare',
    'cu_bare2',
    ...['noop', 'stdout', 'file'].filter((s) => wanted.has(s)).map((s) => `cu_${s}`),
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
      ...(m.brokerMicros !== undefined ? { brokerUsPerChange: round(m.brokerMicros / n, 1) } : {}),
      ...(m.peakRss ? { peakRssMb: Math.round(m.peakRss / 2 ** 20) } : {}),
    };
    const notes = [
      ...(r.brokerUsPerChange !== undefined ? [`broker JVM ${r.brokerUsPerChange} µs CPU/change`] : []),
      ...(note ? [note] : []),
    ];
    if (notes.length) r.note = notes.join('; ');
    ctx.log(JSON.stringify(r));
    return r;
  };

  ctx.log('ceiling: pg_recvlogical');
  const recv = await runRecvLogical(ctx, 'cu_recv', endLsn);
  await dropSlot(ctx.url, 'cu_recv');
  ctx.log('ceiling: bare pg-logical-replication + JSON.parse');
  const bare = await runBareReader(ctx, 'cu_bare', n);
  await dropSlot(ctx.url, 'cu_bare');
  // Rows are made once the second bare-reader run is in: ratios are against the mean of both.
  const measured: { variant: string; m: Measured; note?: string }[] = [
    {
      variant: 'ceiling: pg_recvlogical → /dev/null',
      m: recv,
      note: 'C client, no parsing; ends at --endpos',
    },
    { variant: 'ceiling: bare reader (pg-logical-replication + JSON.parse)', m: bare },
  ];

  if (wanted.has('noop')) {
    ctx.log('daemon: noop sink (Stream retention off): the pipeline alone');
    const noop = await runDaemon(ctx, 'cu_noop', n, ['noop'], { args: ['--stream-retention-bytes', '0'] });
    await dropSlot(ctx.url, 'cu_noop');
    measured.push({
      variant: 'daemon → noop sink (Stream retention off)',
      m: noop,
      note: 'decode, map, serialize, confirm',
    });
  }

  if (wanted.has('stdout')) {
    ctx.log('daemon: stdout sink → /dev/null');
    const stdout = await runDaemon(ctx, 'cu_stdout', n, ['stdout']);
    await dropSlot(ctx.url, 'cu_stdout');
    measured.push({
      variant: 'daemon → stdout sink (/dev/null)',
      m: stdout,
      note: 'stand-in for a no-op sink: checkpoint in PG per batch',
    });
  }

  // the Kafka ceiling below produces these very events
  const eventsFile = join(ctx.tmp, 'cu_file.ndjson');
  if (wanted.has('file')) {
    ctx.log('daemon: file sink');
    const file = await runDaemon(ctx, 'cu_file', n, ['file'], {
      keepFile: extraSinks.some((s) => s.kind === 'kafka'),
    });
    await dropSlot(ctx.url, 'cu_file');
    measured.push({ variant: 'daemon → file sink (fdatasync per batch)', m: file });
  }

  // The machine is shared: a second bare-reader run after the daemon's shows how much the ceiling drifted.
  ctx.log('ceiling again: bare reader');
  const bare2 = await runBareReader(ctx, 'cu_bare2', n);
  await dropSlot(ctx.url, 'cu_bare2');
  measured.push({
    variant: 'ceiling: bare reader, run again after the daemon',
    m: bare2,
    note: 'drift check (shared machine)',
  });
  // The ceiling: the mean of the runs before and after the daemons (one run alone moved 187–228k
  // events/s within minutes on a shared machine, and every ratio with it).
  const bareRate = (n / (bare.ms / 1000) + n / (bare2.ms / 1000)) / 2;
  for (const { variant, m, note } of measured) rows.push(row(variant, m, bareRate, note));

  for (const s of extraSinks) {
    if (s.kind === 'kafka') {
      rows.push(...(await kafkaRows(ctx, s.args, eventsFile, bareRate, row)));
      await dropSlot(ctx.url, 'cu_kafka');
      continue;
    }
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
    const sink = process.env.BENCH_PROFILE_SINK ?? 'file';
    ctx.log(`profile: daemon → ${sink} sink under --cpu-prof`);
    const dir = join(ctx.tmp, 'profile');
    mkdirSync(dir, { recursive: true });
    const extra = extraSinks.find((s) => s.kind === sink);
    if ((sink === 'kafka' || sink === 'pubsub') && !extra)
      throw new Error(`BENCH_PROFILE_SINK=${sink} needs its server (--${sink})`);
    const m = await runDaemon(ctx, 'cu_prof', n, [sink], {
      nodeArgs: ['--cpu-prof', '--cpu-prof-dir', dir],
      ...(sink === 'noop' ? { args: ['--stream-retention-bytes', '0'] } : {}),
      ...(extra ? { args: extra.args, env: extra.env } : {}),
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
      // A sink's own thread (the Kafka producer) writes a profile of its own.
      for (const f of files.slice(1))
        ctx.log(`thread profile ${f}:\n${formatSummary(summariseFile(f, 15, m.window))}`);
    } else ctx.notes.push('profile: the daemon wrote no .cpuprofile');
  }

  return { rows, bareRate, ...(profile ? { profile } : {}) };
}
