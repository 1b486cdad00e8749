import { existsSync, readFileSync, rmSync } from 'node:fs';
import { stopAndRemove, stopRunning, type RunningService } from './services.ts';

export default async function globalTeardown(): Promise<void> {
  const file = process.env.TAG_CONNECTOR_JEST_STATE;
  if (!file || !existsSync(file)) return;
  const running = JSON.parse(readFileSync(file, 'utf8')) as RunningService[];
  if (process.env.TAG_CONNECTOR_KEEP_TEST_STATE) stopRunning(running);
  else await stopAndRemove(running);
  rmSync(file, { force: true });
}
