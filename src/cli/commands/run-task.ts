import type { CommandModule } from 'yargs';
import { configFromArgv, runMain } from '../load.ts';
import { taskStoreOptions, withOptions } from '../options.ts';

export const runTaskCommand: CommandModule = {
  command: 'run-task',
  describe:
    'Run one task (ETL context) in this process, resuming from its events. Exit 0 done, 3 failed, 4 locked by another run, 5 not found',
  builder: (y) =>
    withOptions(y, ...taskStoreOptions)
      .option('etl-context-id', { type: 'number', demandOption: true, describe: 'The context to run' })
      .option('attempt', {
        type: 'number',
        hidden: true,
        describe: 'Retry count of the job (set by the daemon)',
      }),
  handler: async (argv) => {
    const config = configFromArgv(argv);
    const id = Number(argv.etlContextId);
    if (!Number.isInteger(id) || id <= 0) {
      process.stderr.write(
        `tag-connector: --etl-context-id: expected a positive integer, got ${String(argv.etlContextId)}\n`,
      );
      process.exit(2);
    }
    await runMain(async () => {
      const { runRunTask } = await import('../../jobrunner/commands.ts');
      return runRunTask(config, id, Number(argv.attempt ?? 0) || 0);
    });
  },
};
