import type { SinkKind } from '../config/index.ts';
import type { SinkContext } from './context.ts';
import type { Sink } from './sink.ts';

export type { Sink, OutboundEvent, SinkStatus } from './sink.ts';
export { asEvents, asPacked, PackedBatch, type SinkBatch } from './batch.ts';
export { EventBlock } from './event-block.ts';
export {
  SINK_CONFIG_KEYS,
  type KafkaConnectionConfig,
  type KafkaSinkConfig,
  type PubSubSinkConfig,
  type SinkConfig,
  type SinkContext,
} from './context.ts';

/**
 * Loads the modules of these sinks' client libraries (and starts the Kafka sink's thread) without
 * building or opening anything: a standby
 * does it while it waits for the leader lock, so that taking over does not wait for them (seconds on
 * a loaded machine). Never fails: createSink imports again and reports what cannot load.
 */
export async function preloadSinks(
  kinds: Iterable<SinkKind>,
  { kafkaThread = true }: { kafkaThread?: boolean } = {},
): Promise<void> {
  const modules: Record<SinkKind, () => Promise<unknown>> = {
    stdout: () => import('./stdout.ts'),
    file: () => import('./file.ts'),
    // its thread too: it loads the producer's modules once more, in its own isolate
    kafka: async () => {
      const kafka = await import('./kafka/index.ts');
      if (kafkaThread) kafka.prewarmKafkaThread();
    },
    noop: () => import('./noop.ts'),
    pubsub: () => import('./pubsub.ts'),
  };
  await Promise.all([...new Set(kinds)].map((k) => modules[k]().catch(() => undefined)));
}

/** Builds one sink of a kind; heavy client libraries are imported only when their sink is used. */
export async function createSink(kind: SinkKind, ctx: SinkContext): Promise<Sink> {
  switch (kind) {
    case 'stdout': {
      const { StdoutSink } = await import('./stdout.ts');
      return new StdoutSink();
    }
    case 'file': {
      const { FileSink } = await import('./file.ts');
      return new FileSink({
        path: ctx.config.filePath,
        logger: ctx.logger,
        ...(ctx.fs ? { fs: ctx.fs } : {}),
      });
    }
    case 'kafka': {
      const { createKafkaSink } = await import('./kafka/index.ts');
      return createKafkaSink(ctx);
    }
    case 'noop': {
      const { NoopSink } = await import('./noop.ts');
      return new NoopSink();
    }
    case 'pubsub': {
      const { createPubSubSink } = await import('./pubsub.ts');
      return createPubSubSink(ctx);
    }
  }
}
