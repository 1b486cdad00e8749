import type { SinkContext } from './context.ts';
import type { Sink } from './sink.ts';

export async function createKafkaSink(_ctx: SinkContext): Promise<Sink> {
  throw new Error('the kafka sink is not implemented yet');
}
