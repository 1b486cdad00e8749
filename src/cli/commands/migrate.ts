import type { CommandModule } from 'yargs';
import { configFromArgv, runMain } from '../load.ts';
import { taskStoreOptions, withOptions } from '../options.ts';

export const migrateCommand: CommandModule = {
  command: 'migrate',
  describe: "Apply the state schema's migrations (extractor, job runner) and install or upgrade pg-boss",
  builder: (y) =>
    withOptions(y, ...taskStoreOptions).option('json', {
      type: 'boolean',
      describe: 'Print what was applied as JSON',
    }),
  handler: async (argv) => {
    const config = configFromArgv(argv);
    await runMain(async () => {
      const { runMigrate } = await import('../../jobrunner/commands.ts');
      return runMigrate(config, Boolean(argv.json));
    });
  },
};
