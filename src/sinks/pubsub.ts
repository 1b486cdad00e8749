import type { SinkContext } from './context.ts';
import type { Sink } from './sink.ts';

export async function createPubSubSink(_ctx: SinkContext): Promise<Sink> {
  throw new Error('the pubsub sink is not implemented yet');
}
