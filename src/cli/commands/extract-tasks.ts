import type { CommandModule } from 'yargs';
import { loadConfig } from '../../config/index.ts';
import { configFromArgv, runMain } from '../load.ts';
import { extractTasksOptionGroups } from '../help-scope.ts';
import { withOptions } from '../options.ts';

export const extractTasksCommand: CommandModule = {
  command: 'extract-tasks',
  describe: 'Stream committed changes of the task tables from a logical replication slot to the sinks',
  builder: (y) => withOptions(y, ...extractTasksOptionGroups),
  handler: async (argv) => {
    const config = configFromArgv(argv);
    await runMain(async () => {
      const { runExtractor } = await import('../../app/extract-tasks.ts');
      // A reload reads flags, env and the file again, validated as at start (docs/governance.md).
      const file = (argv.config as string | undefined) ?? process.env.TAG_CONNECTOR_CONFIG;
      return runExtractor(config, {
        load: () => loadConfig({ flags: argv }),
        ...(file ? { file } : {}),
      });
    });
    // Everything is drained and confirmed by now: don't let a stray handle keep the process alive.
    process.exit(process.exitCode ?? 0);
  },
};
