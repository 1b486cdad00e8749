import type { Config } from '../config/index.ts';

export async function runStartJob(_config: Config): Promise<number> {
  throw new Error('start-job is not implemented yet');
}
