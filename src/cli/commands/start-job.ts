import type { CommandModule } from 'yargs';
import { configFromArgv, runMain } from '../load.ts';
import { allDaemonOptions, withOptions } from '../options.ts';

export const startJobCommand: CommandModule = {
  command: 'start-job',
  describe: 'Run the job runner: scheduled workspace snapshots, initial-sync, healing and dump jobs',
  builder: (y) => withOptions(y, ...allDaemonOptions),
  handler: async (argv) => {
    const config = configFromArgv(argv);
    await runMain(async () => {
      const { runStartJob } = await import('../../jobrunner/start-job.ts');
      return runStartJob(config);
    });
  },
};
