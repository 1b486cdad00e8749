import { ConfigError, loadConfig, type Config } from '../config/index.ts';

export const EXIT_CONFIG = 2;

/** Loads the config from parsed flags; on a bad value prints one line naming the field and exits 2. */
export function configFromArgv(argv: Record<string, unknown>): Config {
  try {
    return loadConfig({ flags: argv });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`tag-connector: ${err.message}\n`);
      process.exit(EXIT_CONFIG);
    }
    throw err;
  }
}

/** Runs a daemon/command body; a thrown error is reported in one line and exits 1 (or its exitCode). */
export async function runMain(body: () => Promise<number | void>): Promise<void> {
  try {
    const code = await body();
    if (typeof code === 'number') process.exitCode = code;
  } catch (err) {
    const e = err as Error & { exitCode?: number; code?: string };
    process.stderr.write(`tag-connector: ${e.code ? `[${e.code}] ` : ''}${e.message}\n`);
    if (process.env.TAG_CONNECTOR_DEBUG) process.stderr.write(`${e.stack}\n`);
    process.exit(e.exitCode ?? 1);
  }
}
