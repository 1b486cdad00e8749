import type { Config } from '../config/index.ts';
import { createLogger } from '../log.ts';
import { VERSION } from '../version.ts';
import { Extractor } from '../extractor/index.ts';
import { apiConfigOf, extractorConfigOf } from './slices.ts';
import { watchReloads } from './reload.ts';

/**
 * `extract-tasks`: run until SIGTERM/SIGINT (exit 0 after draining) or a fatal error (non-zero).
 * `reloadConfig` loads and validates the config again (flags, env, file as at start): SIGHUP and a
 * change of the config file reload the `tables:` rules and topic routes with it (docs/governance.md).
 */
export async function runExtractor(
  config: Config,
  reloadConfig?: { load: () => Config; file?: string },
): Promise<number> {
  const logger = createLogger(config.logLevel);
  logger.info(
    { version: VERSION, slot: config.slot, plugin: config.plugin, sinks: config.sink },
    'extract-tasks starting',
  );
  const extractor = new Extractor(extractorConfigOf(config), logger);
  const { startApi } = await import('../api/index.ts');
  let api: Awaited<ReturnType<typeof startApi>> | undefined;
  let stopping: Promise<void> | undefined;
  const stop = (signal: string) => {
    if (stopping) return;
    logger.info({ signal }, 'stopping');
    stopping = (async () => {
      stopReloads();
      await extractor.stop();
      await api?.close().catch(() => undefined);
    })();
  };
  extractor.onFinished = (reason) => stop(reason);
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  const stopReloads = reloadConfig
    ? watchReloads(reloadConfig, logger, (next) => extractor.reload(extractorConfigOf(next)))
    : () => undefined;
  try {
    api = await startApi({ config: apiConfigOf(config), logger, extractor });
    await extractor.start();
  } catch (err) {
    await extractor.stop().catch(() => undefined);
    await api?.close().catch(() => undefined);
    throw err;
  }
  if (!extractor.pipeline) {
    await stopping; // stopped while standing by
    return 0;
  }
  try {
    await extractor.pipeline.done;
  } catch (err) {
    await api?.close().catch(() => undefined);
    throw err;
  }
  await stopping;
  return 0;
}
