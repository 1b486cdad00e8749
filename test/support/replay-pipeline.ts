import type { Catalog, TableInfo } from '../../src/extractor/decode/catalog.ts';
import { Mapper } from '../../src/extractor/pipeline/mapper.ts';
import { Pipeline } from '../../src/extractor/pipeline/pipeline.ts';
import type { TableFilter } from '../../src/extractor/pipeline/roles.ts';
import { createPgoutputDecoder } from '../../src/extractor/decode/pgoutput.ts';
import { decodeWal2Json } from '../../src/extractor/decode/wal2json.ts';
import type { Logger } from '../../src/log.ts';
import { SinkRunner } from '../../src/sinks/runner.ts';
import type { Sink } from '../../src/sinks/sink.ts';
import type { ReplaySource } from './replay-source.ts';

/** The table of the captured sample, as the catalog would describe it. */
const SAMPLE_TABLE: TableInfo = {
  name: 'public.bench_rows',
  root: 'public.bench_rows',
  columns: [],
  pk: ['id'],
  replicaIdentity: 'd',
};
const catalogOf = (table: TableInfo) =>
  ({
    cached: () => table,
    load: async () => table,
    invalidate: () => undefined,
  }) as unknown as Catalog;
const trackEverything = { isTracked: () => true } as unknown as TableFilter;

export interface ReplayPipelineOptions {
  logger: Logger;
  batchSize: number;
  maxInFlightEvents: number;
  maxInFlightBytes: number;
  /** The replayed table as the catalog describes it (default: the narrow sample's, no column list). */
  table?: TableInfo;
}

/**
 * The real Pipeline (the source's plugin's decoder, mapper, checkpoint tracker, one runner per sink) over a replay
 * source, no database: not started yet (`pipeline.start()`); `drained()` resolves once the source's
 * last transaction is confirmed, i.e. durable in every sink.
 */
export async function replayPipeline(
  source: ReplaySource,
  sinks: Sink[],
  o: ReplayPipelineOptions,
): Promise<{ pipeline: Pipeline; drained: () => Promise<void> }> {
  const ref: { p?: Pipeline } = {};
  const runners = sinks.map(
    (sink) =>
      new SinkRunner(sink, {
        batchSize: o.batchSize,
        retryLimit: 1,
        logger: o.logger,
        onDurable: (name, ordinal) => ref.p?.markDurable(name, ordinal),
        onFatal: (_n, err) => ref.p?.fail(err),
      }),
  );
  for (const r of runners) await r.open();
  const pipeline = new Pipeline({
    logger: o.logger,
    decoder: source.plugin === 'pgoutput' ? createPgoutputDecoder() : decodeWal2Json,
    catalog: catalogOf(o.table ?? SAMPLE_TABLE),
    filter: trackEverything,
    mapper: new Mapper({ database: 'db', slot: 'replay', roles: {} }),
    runners,
    connect: () => source,
    startLsn: 0n,
    maxInFlightEvents: o.maxInFlightEvents,
    maxInFlightBytes: o.maxInFlightBytes,
    statusIntervalMs: 10,
  });
  ref.p = pipeline;
  const drained = () =>
    new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        const end = source.finalEnd();
        if (end !== undefined && pipeline.confirmedLsn() >= end) {
          clearInterval(poll);
          resolve();
        }
      }, 2);
    });
  return { pipeline, drained };
}
