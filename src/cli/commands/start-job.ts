import type { CommandModule } from 'yargs';
import { configFromArgv, runMain } from '../load.ts';
import { startJobOptionGroups } from '../help-scope.ts';
import { withOptions } from '../options.ts';

export const startJobCommand: CommandModule = {
  command: 'start-job',
  describe: 'Run the job runner: scheduled workspace snapshots, initial-sync, healing and dump jobs',
  builder: (y) => withOptions(y, ...startJobOptionGroups),
  handler: async (argv) => {
    const { applyEnvAliases } = await import('../../startjob/aliases.ts');
    applyEnvAliases(process.env);
    const config = configFromArgv(argv);
    await runMain(async () => {
      const { runStartJob } = await import('../../startjob/index.ts');
      return runStartJob(config);
    });
    process.exit(process.exitCode ?? 0);
  },
};
