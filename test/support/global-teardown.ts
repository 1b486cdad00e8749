import { existsSync, readFileSync, rmSync } from 'node:fs';
import { stopRunning, type RunningService } from './services.ts';

export default async function globalTeardown(): Promise<void> {
  const file = process.env.TAG_CONNECTOR_JEST_STATE;
  if (!file || !existsSync(file)) return;
  const running = JSON.parse(readFileSync(file, 'utf8')) as RunningService[];
  stopRunning(running);
  await new Promise((r) => setTimeout(r, 1000));
  if (!process.env.TAG_CONNECTOR_KEEP_TEST_STATE) {
    for (const s of running) for (const d of s.dirs) rmSync(d, { recursive: true, force: true });
  }
  rmSync(file, { force: true });
}
