/**
 * The pipeline alone, no database: captured wal2json messages (one per line, as
 * `pg_logical_slot_get_changes(..., 'format-version','2', ...)` prints them) are replayed through the
 * real Pipeline (decoder → mapper → checkpoint tracker → a sink runner with the noop sink) as fast as
 * it takes them, with pause/resume honoured like the replication socket. CPU per change here is the
 * daemon's own cost, repeatable enough to compare builds (`--cpu-prof`, `--trace-gc` work as usual):
 *
 *   node --max-semi-space-size=8 bench/pipeline-replay.ts [messages.txt] [changes=600000]
 *   BENCH_HOLD_MS=15 node ...   (the sink holds each batch 15 ms, as a Kafka transaction does)
 *
 * The default messages are bench/fixtures/wal2json-sample.txt (200 inserts into the catch-up table, then
 * the UPDATEs of those rows, as the catch-up backlog has them). V8 runs with the CLI's flags: the same
 * `--max-semi-space-size` as the shebang, and src/cli/v8-flags.ts imported first.
 */
import '../src/cli/v8-flags.ts';
import pino from 'pino';
import type { Catalog, TableInfo } from '../src/extractor/catalog.ts';
import { Mapper } from '../src/extractor/mapper.ts';
import { Pipeline } from '../src/extractor/pipeline.ts';
import type { TableFilter } from '../src/extractor/roles.ts';
import { decodeWal2Json } from '../src/extractor/wal2json.ts';
import { NoopSink } from '../src/sinks/noop.ts';
import { SinkRunner } from '../src/sinks/runner.ts';
import { ReplaySource, WAL2JSON_SAMPLE } from '../test/support/replay-source.ts';

const [fileArg, changesArg] = process.argv.slice(2);
const target = Number(changesArg ?? 600_000);
const source = new ReplaySource(target, fileArg ?? WAL2JSON_SAMPLE);

const info: TableInfo = {
  name: 'public.bench',
  root: 'public.bench',
  columns: [],
  pk: ['id'],
  replicaIdentity: 'd',
};
const catalog = {
  cached: () => info,
  load: async () => info,
  invalidate: () => undefined,
} as unknown as Catalog;
const filter = { isTracked: () => true } as unknown as TableFilter;
const logger = pino({ level: 'warn' }, pino.destination(2));
const ref: { p?: Pipeline } = {};
/**
 * BENCH_HOLD_MS=n: the sink acknowledges each batch n ms after it got it (one batch at a time), as a
 * Kafka transaction or an fdatasync does: events then live as long as they do in the daemon, and the
 * CPU per change includes the GC cost of that (with the noop sink they die young).
 */
const holdMs = Number(process.env.BENCH_HOLD_MS ?? 0);
class HoldingSink extends NoopSink {
  override async write(): Promise<void> {
    await new Promise((r) => setTimeout(r, holdMs));
  }
}
const runner = new SinkRunner(holdMs > 0 ? new HoldingSink() : new NoopSink(), {
  batchSize: 2000,
  retryLimit: 1,
  logger,
  onDurable: (name, ordinal) => ref.p?.markDurable(name, ordinal),
  onFatal: (_n, err) => ref.p?.fail(err),
});
await runner.open();
const pipeline = new Pipeline({
  logger,
  decoder: decodeWal2Json,
  catalog,
  filter,
  mapper: new Mapper({ database: 'bench', slot: 'replay', roles: {} }),
  runners: [runner],
  connect: () => source,
  startLsn: 0n,
  maxInFlightEvents: 5000,
  maxInFlightBytes: 16 * 1024 * 1024,
  statusIntervalMs: 10,
});
ref.p = pipeline;
const rowBufs = Array.from({ length: source.txSize }, (_, i) => Buffer.from(source.rowText(i)));
const beginText = source.beginText();
// The same messages through JSON.parse alone, first: the in-process "bare reader" for the ratio.
const bareCpu0 = process.cpuUsage();
let parsed = 0;
for (let i = 0, row = 0; i < target; i++) {
  if (row === 0) JSON.parse(beginText);
  parsed += (JSON.parse(rowBufs[row]!.toString('utf8')) as { columns: unknown[] }).columns.length;
  if (++row === rowBufs.length) row = 0;
}
const bareCpu = process.cpuUsage(bareCpu0);
const bareUs = (bareCpu.user + bareCpu.system) / target;

const cpu0 = process.cpuUsage();
const t0 = performance.now();
await pipeline.start();
await new Promise<void>((resolve) => {
  const poll = setInterval(() => {
    const end = source.finalEnd();
    if (end !== undefined && pipeline.confirmedLsn() >= end) {
      clearInterval(poll);
      resolve();
    }
  }, 2);
});
const ms = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
await pipeline.stop(1000);
process.stdout.write(
  JSON.stringify({
    changes: target,
    ms: Math.round(ms),
    perSec: Math.round(target / (ms / 1000)),
    cpuUsPerChange: +((cpu.user + cpu.system) / target).toFixed(2),
    jsonParseUsPerChange: +bareUs.toFixed(2),
    columnsParsed: parsed,
    peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
    ...(holdMs > 0 ? { holdMs } : {}),
  }) + '\n',
);
process.exit(0);
