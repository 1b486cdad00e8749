import type { Config } from '../config/index.ts';

export async function runExtractor(_config: Config): Promise<number> {
  throw new Error('extract-tasks is not implemented yet');
}
