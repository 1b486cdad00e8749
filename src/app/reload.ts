import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Config } from '../config/index.ts';
import type { Logger } from '../log.ts';

/** A burst of file events (an editor's write, rename and chmod) is one reload, this long after the last. */
const SETTLE_MS = 200;

/**
 * Reloads on SIGHUP and when the config file changes (docs/governance.md): loads the config again,
 * and hands it on only when it is valid; an invalid one is logged and the running rules stay. Reloads
 * run one at a time; one asked for during another runs after it. Returns the function that stops it.
 */
export function watchReloads(
  source: { load: () => Config; file?: string },
  logger: Logger,
  apply: (next: Config) => Promise<void>,
): () => void {
  let running: Promise<void> | undefined;
  let again = false;
  const reload = (why: string): void => {
    if (running) {
      again = true;
      return;
    }
    running = (async () => {
      let next: Config;
      try {
        next = source.load();
      } catch (err) {
        logger.error(
          { reason: why, err: (err as Error).message },
          'config reload refused: keeping the running rules',
        );
        return;
      }
      try {
        await apply(next);
        logger.info({ reason: why }, 'config reloaded: tables rules and topic routes');
      } catch (err) {
        logger.error(
          { reason: why, err: (err as Error).message },
          'config reload failed: keeping the running rules',
        );
      }
    })().finally(() => {
      running = undefined;
      if (again) {
        again = false;
        reload(why);
      }
    });
  };
  const onHup = () => reload('SIGHUP');
  process.on('SIGHUP', onHup);
  let watcher: FSWatcher | undefined;
  let timer: NodeJS.Timeout | undefined;
  if (source.file) {
    const name = basename(source.file);
    try {
      // The directory, not the file: an editor that saves by rename replaces the file we would watch.
      watcher = watch(dirname(source.file), (_event, changed) => {
        if (changed !== null && changed !== name) return;
        clearTimeout(timer);
        timer = setTimeout(() => reload('config file changed'), SETTLE_MS);
      });
      watcher.on('error', (err) =>
        logger.warn({ err: err.message }, 'config file watch failed; SIGHUP still reloads'),
      );
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'cannot watch the config file; SIGHUP still reloads');
    }
  }
  return () => {
    process.off('SIGHUP', onHup);
    clearTimeout(timer);
    watcher?.close();
  };
}
