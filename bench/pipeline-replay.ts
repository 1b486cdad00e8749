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
import { NoopSink } from '../src/sinks/noop.ts';
import { replayPipeline } from '../test/support/replay-pipeline.ts';
import { ReplaySource, WAL2JSON_SAMPLE } from '../test/support/replay-source.ts';

const [fileArg, changesArg] = process.argv.slice(2);
const target = Number(changesArg ?? 600_000);
const source = new ReplaySource(target, fileArg ?? WAL2JSON_SAMPLE);

const logger = pino({ level: 'warn' }, pino.destination(2));
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
const { pipeline, drained } = await replayPipeline(
  source,
  [holdMs > 0 ? new HoldingSink() : new NoopSink()],
  {
    logger,
    batchSize: 2000,
    maxInFlightEvents: 5000,
    maxInFlightBytes: 16 * 1024 * 1024,
  },
);
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
await drained();
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
