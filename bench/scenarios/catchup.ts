import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { WAL2JSON_OPTIONS } from '../../src/extractor/decode/wal2json.ts';
import { formatSummary, summariseFile, type ProfileSummary } from '../cpuprofile.ts';
import { type BenchContext, type Row, round } from '../lib/context.ts';
import { Daemon, ROOT } from '../lib/daemon.ts';
import { createSlots, currentLsn, dropSlot, slotPid, sql } from '../lib/db.ts';
import { CpuMeter, memory, ThreadMeter, type BusyShares } from '../lib/proc.ts';
import { WORKLOADS, type Workload } from '../lib/workloads.ts';
import { DEFAULT_ORDERING_BUCKETS } from '../../src/sinks/ordering-key.ts';

const TX_SIZE = 2000;

export type Plugin = 'wal2json' | 'pgoutput';

/** One workload's catch-up: its table, the options the daemon starts wal2json with, its publication. */
export interface Backlog {
  workload: Workload;
  /** wal2json options as the daemon passes them (bench/README: "same options"). */
  readerOptions: Record<string, string>;
  publication: string;
  /** `cu_<workload>_`: the prefix of its slots. */
  prefix: string;
}

interface Measured {
  ms: number;
  /** Bytes the file sink wrote per event (its NDJSON line). */
  eventBytes?: number;
  cpuMicros: number;
  walsenderMicros: number;
  busy?: BusyShares;
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
async function runRecvLogical(
  ctx: BenchContext,
  b: Backlog,
  slot: string,
  endLsn: string,
): Promise<Measured> {
  settleDisk();
  const u = new URL(ctx.url);
  const args = [
    ...['-h', u.hostname, '-p', u.port, '-U', 'postgres', '-d', u.pathname.slice(1)],
    ...['--slot', slot, '--start', '--endpos', endLsn, '--no-loop', '-f', '/dev/null'],
    ...Object.entries(b.readerOptions).flatMap(([k, v]) => ['-o', `${k}=${v}`]),
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

export async function runBareReader(
  ctx: BenchContext,
  b: Backlog,
  plugin: Plugin,
  slot: string,
  changes: number,
): Promise<Measured & { lastEnd: string }> {
  settleDisk();
  const pluginArgs = plugin === 'wal2json' ? [JSON.stringify(b.readerOptions)] : ['pgoutput', b.publication];
  const proc = spawn(
    process.execPath,
    [join(ROOT, 'bench', 'bare-reader.ts'), ctx.url, slot, String(changes), ...pluginArgs],
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
function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

function settleDisk(): void {
  spawnSync('sync', { stdio: 'ignore' });
}

export async function runDaemon(
  ctx: BenchContext,
  b: Backlog,
  plugin: Plugin,
  slot: string,
  changes: number,
  sinks: string[],
  extra: {
    args?: string[];
    nodeArgs?: string[];
    env?: NodeJS.ProcessEnv;
    keepFile?: boolean;
    cli?: string;
  } = {},
): Promise<Measured & { window: { fromMs: number; toMs: number } }> {
  const filePath = join(ctx.tmp, `${slot}.ndjson`);
  const { keepFile, ...options } = extra;
  settleDisk();
  const d = new Daemon({
    pgUrl: ctx.url,
    slot,
    table: b.workload.table,
    sinks,
    filePath,
    plugin,
    ...(plugin === 'pgoutput' ? { publication: b.publication } : {}),
    ...options,
  });
  try {
    await d.waitStreaming();
    const cpu = new CpuMeter(d.pid);
    cpu.start();
    const threads = new ThreadMeter(d.pid);
    threads.start();
    const broker = new CpuMeter(ctx.env.kafkaPid);
    broker.start();
    const ws = await walsenderMeter(ctx.url, slot);
    await d.waitDelivered(changes, 30 * 60_000, () => {
      cpu.sample();
      threads.sample();
    });
    const ms = Date.now() - d.streamingAt;
    const cpuMicros = cpu.sample();
    threads.sample();
    const busy = threads.shares();
    const brokerMicros = sinks.includes('kafka') && ctx.env.kafkaPid ? broker.sample() : undefined;
    const walsenderMicros = ws.stop();
    const peakRss = memory(d.pid).hwm;
    const eventBytes = sinks.includes('file') ? Math.round(fileSize(filePath) / changes) : undefined;
    const window = { fromMs: d.streamingAt - d.spawnedAt, toMs: d.streamingAt + ms - d.spawnedAt };
    return {
      ms,
      cpuMicros,
      walsenderMicros,
      brokerMicros,
      peakRss,
      window,
      busy,
      ...(eventBytes ? { eventBytes } : {}),
    };
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
  b: Backlog,
  plugin: Plugin,
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
  await alone('before the daemon');
  ctx.log('daemon: kafka sink');
  let daemon: Measured | undefined;
  try {
    daemon = await runDaemon(ctx, b, plugin, `${b.prefix}kafka`, n, ['kafka'], { args });
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
        `daemon → kafka sink (exactly-once), ${plugin}`,
        daemon,
        ceiling,
        kafkaAlone === undefined
          ? 'ratio against the bare reader (Kafka alone failed)'
          : `ratio against min(bare reader, Kafka alone) = ${Math.round(ceiling).toLocaleString('en-US')}/s; ` +
              `${round(rate / bareRate, 2)} of the bare reader, ${round(rate / kafkaAlone, 2)} of Kafka alone`,
      ),
    );
  }
  return rows;
}

/** The "Pub/Sub client alone" ceiling (bench/pubsub-alone.ts): the daemon's events, same emulator. */
async function runPubSubAlone(
  ctx: BenchContext,
  env: NodeJS.ProcessEnv,
  file: string,
  events: number,
): Promise<Measured> {
  const proc = spawn(
    process.execPath,
    [join(ROOT, 'bench', 'pubsub-alone.ts'), file, String(events), String(DEFAULT_ORDERING_BUCKETS)],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } },
  );
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  let peak = 0;
  const rssTimer = setInterval(() => (peak = Math.max(peak, memory(proc.pid).hwm)), 200);
  const code = await new Promise<number | null>((r) => proc.on('exit', r));
  clearInterval(rssTimer);
  const done = out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { ev: string; events: number; ms: number; cpuMicros: number })
    .find((m) => m.ev === 'done');
  if (code !== 0 || !done) throw new Error(`pubsub alone exited ${code}: ${err.slice(-2000)}`);
  if (done.events !== events) ctx.notes.push(`pubsub alone: published ${done.events} of ${events} events`);
  return { ms: done.ms, cpuMicros: done.cpuMicros, walsenderMicros: 0, peakRss: peak };
}

/** The Pub/Sub sink against min(bare reader, the Pub/Sub client alone), as kafkaRows does for Kafka. */
async function pubsubRows(
  ctx: BenchContext,
  b: Backlog,
  plugin: Plugin,
  args: string[],
  env: NodeJS.ProcessEnv,
  eventsFile: string,
  bareRate: number,
  row: (variant: string, m: Measured, ceiling: number | undefined, note?: string) => Row,
): Promise<Row[]> {
  const n = ctx.changes;
  const rows: Row[] = [];
  const aloneRates: number[] = [];
  const alone = async (when: string) => {
    ctx.log(`ceiling: Pub/Sub client alone (${when})`);
    try {
      const m = await runPubSubAlone(ctx, env, eventsFile, n);
      aloneRates.push(n / (m.ms / 1000));
      const r = row(
        `ceiling: Pub/Sub client alone (${when})`,
        m,
        bareRate,
        `@google-cloud/pubsub publishing the daemon's events with the sink's settings, ${DEFAULT_ORDERING_BUCKETS} ordering buckets, 2000-message runs`,
      );
      delete r.walsenderUsPerChange;
      rows.push(r);
    } catch (err) {
      ctx.notes.push(`catch-up pubsub alone (${when}): failed: ${(err as Error).message.slice(0, 300)}`);
    }
  };
  await alone('before the daemon');
  ctx.log(`daemon: pubsub sink, ${plugin}`);
  let daemon: Measured | undefined;
  try {
    daemon = await runDaemon(ctx, b, plugin, `${b.prefix}pubsub`, n, ['pubsub'], { args, env });
  } catch (err) {
    ctx.notes.push(`catch-up pubsub: failed: ${(err as Error).message.slice(0, 300)}`);
  }
  await alone('after the daemon');
  if (daemon) {
    const pubsubAlone = aloneRates.length ? Math.max(...aloneRates) : undefined;
    const ceiling = Math.min(bareRate, pubsubAlone ?? Infinity);
    const rate = n / (daemon.ms / 1000);
    rows.push(
      row(
        `daemon → pubsub sink (default settings), ${plugin}`,
        daemon,
        ceiling,
        pubsubAlone === undefined
          ? 'ratio against the bare reader (Pub/Sub alone failed)'
          : `ratio against min(bare reader, Pub/Sub alone) = ${Math.round(ceiling).toLocaleString('en-US')}/s; ` +
              `${round(rate / bareRate, 2)} of the bare reader, ${round(rate / pubsubAlone, 2)} of Pub/Sub alone`,
      ),
    );
  }
  return rows;
}

export interface CatchUpResult {
  rows: Row[];
  profile?: ProfileSummary & { file: string };
}

/** Every workload in turn (ctx.workloads): its own table, slots, backlog and bare readers. */
export async function catchUp(ctx: BenchContext, opts: { profile: boolean }): Promise<CatchUpResult> {
  const rows: Row[] = [];
  let profile: CatchUpResult['profile'];
  const profiled = process.env.BENCH_PROFILE_WORKLOAD ?? ctx.workloads.at(-1);
  for (const name of ctx.workloads) {
    const workload = WORKLOADS[name];
    if (!workload) throw new Error(`unknown workload ${name} (known: ${Object.keys(WORKLOADS).join(', ')})`);
    const r = await catchUpWorkload(ctx, workload, { profile: opts.profile && name === profiled });
    rows.push(...r.rows);
    if (r.profile) profile = r.profile;
  }
  return { rows, ...(profile ? { profile } : {}) };
}

const SINK_NOTES: Record<string, string> = {
  noop: 'decode, map, serialize, confirm',
  stdout: 'stand-in for a no-op sink: checkpoint in PG per batch',
};
const SINK_VARIANTS: Record<string, string> = {
  noop: 'daemon → noop sink (Stream retention off)',
  stdout: 'daemon → stdout sink (/dev/null)',
  file: 'daemon → file sink (fdatasync per batch)',
};

async function catchUpWorkload(
  ctx: BenchContext,
  workload: Workload,
  opts: { profile: boolean },
): Promise<CatchUpResult> {
  const n = ctx.changes;
  const b: Backlog = {
    workload,
    readerOptions: { ...WAL2JSON_OPTIONS, 'add-tables': workload.table },
    publication: `bench_${workload.name}`,
    prefix: `cu_${workload.name}_`,
  };
  const slotOf = (what: string, plugin: Plugin) => `${b.prefix}${what}${plugin === 'pgoutput' ? '_pg' : ''}`;
  const plugins = ctx.plugins;
  // Kafka and Pub/Sub run once, with the plugin BENCH_SINK_PLUGIN names (default: the first one).
  const sinkPlugin = (process.env.BENCH_SINK_PLUGIN as Plugin | undefined) ?? plugins[0]!;
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
      args: ['--project-id', 'bench', '--topic', `bench-${workload.name}-${Date.now()}`],
      // no GCE metadata probe (the auth library's, off the loopback): the emulator needs no credentials
      env: { PUBSUB_EMULATOR_HOST: ctx.env.pubsubHost, METADATA_SERVER_DETECTION: 'none' },
    });
  else if (wanted.has('pubsub'))
    ctx.notes.push('catch-up pubsub: skipped (PUBSUB_EMULATOR_HOST not set; `--pubsub` starts the emulator)');

  const daemonSinks = ['noop', 'stdout', 'file'].filter((s) => wanted.has(s));
  const slots: Record<Plugin, string[]> = { wal2json: [], pgoutput: [] };
  slots.wal2json.push(slotOf('recv', 'wal2json'));
  for (const p of plugins) {
    slots[p].push(slotOf('bare', p), slotOf('bare2', p), ...daemonSinks.map((s) => slotOf(s, p)));
  }
  for (const s of extraSinks) slots[sinkPlugin].push(slotOf(s.kind, sinkPlugin));
  const profilePlugin = (process.env.BENCH_PROFILE_PLUGIN as Plugin | undefined) ?? plugins[0]!;
  if (opts.profile) slots[profilePlugin].push(slotOf('prof', profilePlugin));

  await workload.create(ctx.url);
  await sql(ctx.url, `CREATE PUBLICATION ${b.publication} FOR TABLE ${workload.table}`);
  await createSlots(ctx.url, slots.wal2json, 'wal2json');
  await createSlots(ctx.url, slots.pgoutput, 'pgoutput');
  ctx.log(`${workload.name}: loading ${n} changes in ${TX_SIZE}-row transactions`);
  const t0 = Date.now();
  const load = await workload.load(ctx.url, n, TX_SIZE);
  const endLsn = await currentLsn(ctx.url);
  ctx.log(
    `${workload.name}: loaded ${load.changes} changes / ${load.transactions} transactions in ${Date.now() - t0} ms, end ${endLsn}`,
  );

  const scenario = `catch-up (${workload.name})`;
  const rows: Row[] = [];
  const row = (variant: string, m: Measured, bareRate: number | undefined, note?: string): Row => {
    const rate = n / (m.ms / 1000);
    const r: Row = {
      scenario,
      variant,
      events: n,
      seconds: round(m.ms / 1000, 2),
      eventsPerSec: Math.round(rate),
      ...(bareRate ? { ratio: round(rate / bareRate, 2) } : {}),
      cpuUsPerChange: round(m.cpuMicros / n, 1),
      walsenderUsPerChange: round(m.walsenderMicros / n, 1),
      ...(m.brokerMicros !== undefined ? { brokerUsPerChange: round(m.brokerMicros / n, 1) } : {}),
      ...(m.peakRss ? { peakRssMb: Math.round(m.peakRss / 2 ** 20) } : {}),
      ...(m.busy ? { busy: { ...m.busy, walsender: round(m.walsenderMicros / 1000 / m.ms, 2) } } : {}),
    };
    const notes = [
      ...(r.brokerUsPerChange !== undefined ? [`broker JVM ${r.brokerUsPerChange} µs CPU/change`] : []),
      ...(note ? [note] : []),
    ];
    if (notes.length) r.note = notes.join('; ');
    ctx.log(JSON.stringify(r));
    return r;
  };

  const measured: { variant: string; m: Measured; note?: string; plugin?: Plugin; sink?: string }[] = [];
  ctx.log('ceiling: pg_recvlogical');
  const recv = await runRecvLogical(ctx, b, slotOf('recv', 'wal2json'), endLsn);
  await dropSlot(ctx.url, slotOf('recv', 'wal2json'));
  measured.push({
    variant: 'ceiling: pg_recvlogical → /dev/null (wal2json)',
    m: recv,
    note: 'C client, no parsing; ends at --endpos',
  });
  const bareRates: Record<string, number[]> = {};
  const bare = async (p: Plugin, what: 'bare' | 'bare2') => {
    ctx.log(`ceiling: bare reader, ${p}${what === 'bare2' ? ' (again)' : ''}`);
    const m = await runBareReader(ctx, b, p, slotOf(what, p), n);
    await dropSlot(ctx.url, slotOf(what, p));
    (bareRates[p] ??= []).push(n / (m.ms / 1000));
    measured.push({
      variant:
        p === 'wal2json'
          ? `ceiling: bare reader, wal2json (pg-logical-replication + JSON.parse)${what === 'bare2' ? ', run again after the daemon' : ''}`
          : `ceiling: bare reader, pgoutput (pg-logical-replication's PgoutputPlugin)${what === 'bare2' ? ', run again after the daemon' : ''}`,
      m,
      ...(what === 'bare2' ? { note: 'drift check (shared machine)' } : {}),
    });
  };
  for (const p of plugins) await bare(p, 'bare');

  // the Kafka and Pub/Sub ceilings below send these very events (the file sink's output)
  const eventsFile = join(ctx.tmp, `${slotOf('file', plugins[0]!)}.ndjson`);
  const needEvents = extraSinks.length > 0;
  for (const sink of daemonSinks) {
    for (const p of plugins) {
      ctx.log(`daemon: ${sink} sink, ${p}`);
      const m = await runDaemon(ctx, b, p, slotOf(sink, p), n, [sink], {
        ...(sink === 'noop' ? { args: ['--stream-retention-bytes', '0'] } : {}),
        keepFile: sink === 'file' && p === plugins[0] && needEvents,
      });
      await dropSlot(ctx.url, slotOf(sink, p));
      measured.push({ variant: `${SINK_VARIANTS[sink]!}, ${p}`, m, note: SINK_NOTES[sink], plugin: p, sink });
    }
  }
  // The machine is shared: a second bare-reader run after the daemons' shows how much the ceiling drifted.
  for (const p of plugins) await bare(p, 'bare2');

  // The ceiling of every ratio: the wal2json bare reader (the plugin the daemon defaults to), the mean
  // of its runs before and after the daemons (one run alone moved 187–228k events/s within minutes on
  // a shared machine, and every ratio with it). pgoutput rows also say how they compare with their
  // wal2json twin and with pgoutput's own bare reader.
  const mean = (xs: number[] | undefined) => (xs?.length ? xs.reduce((a, x) => a + x, 0) / xs.length : 0);
  const bareRate = mean(bareRates.wal2json) || mean(bareRates.pgoutput);
  const bareCpu = (p: Plugin) =>
    mean(
      measured.filter((x) => x.variant.startsWith(`ceiling: bare reader, ${p}`)).map((x) => x.m.cpuMicros),
    );
  for (const x of measured) {
    const notes = x.note ? [x.note] : [];
    if (x.m.eventBytes) notes.push(`${x.m.eventBytes} B/event`);
    if (x.plugin && x.sink) {
      const rate = n / (x.m.ms / 1000);
      const cpuRatio = x.m.cpuMicros / bareCpu('wal2json');
      if (bareCpu('wal2json') > 0) notes.push(`CPU ${round(cpuRatio, 2)}× the wal2json bare reader's`);
      if (x.plugin === 'pgoutput') {
        const twin = measured.find((y) => y.sink === x.sink && y.plugin === 'wal2json');
        if (twin) notes.push(`${round(rate / (n / (twin.m.ms / 1000)), 2)}× the wal2json daemon`);
        if (bareRates.pgoutput)
          notes.push(`${round(rate / mean(bareRates.pgoutput), 2)} of the pgoutput bare reader`);
      }
    }
    rows.push(row(x.variant, x.m, bareRate, notes.join('; ') || undefined));
  }

  for (const s of extraSinks) {
    if (s.kind === 'kafka') {
      rows.push(...(await kafkaRows(ctx, b, sinkPlugin, s.args, eventsFile, bareRate, row)));
      await dropSlot(ctx.url, slotOf('kafka', sinkPlugin));
      continue;
    }
    if (s.kind === 'pubsub') {
      rows.push(...(await pubsubRows(ctx, b, sinkPlugin, s.args, s.env ?? {}, eventsFile, bareRate, row)));
      await dropSlot(ctx.url, slotOf('pubsub', sinkPlugin));
    }
  }
  rmSync(eventsFile, { force: true });

  let profile: CatchUpResult['profile'];
  if (opts.profile) {
    const sink = process.env.BENCH_PROFILE_SINK ?? 'file';
    ctx.log(`profile: daemon → ${sink} sink, ${profilePlugin}, under --cpu-prof`);
    const dir = join(ctx.tmp, 'profile');
    mkdirSync(dir, { recursive: true });
    const extra = extraSinks.find((s) => s.kind === sink);
    if ((sink === 'kafka' || sink === 'pubsub') && !extra)
      throw new Error(`BENCH_PROFILE_SINK=${sink} needs its server (--${sink})`);
    const m = await runDaemon(ctx, b, profilePlugin, slotOf('prof', profilePlugin), n, [sink], {
      nodeArgs: ['--cpu-prof', '--cpu-prof-dir', dir],
      ...(sink === 'noop' ? { args: ['--stream-retention-bytes', '0'] } : {}),
      ...(extra ? { args: extra.args, env: extra.env } : {}),
    });
    await dropSlot(ctx.url, slotOf('prof', profilePlugin));
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

  return { rows, ...(profile ? { profile } : {}) };
}
