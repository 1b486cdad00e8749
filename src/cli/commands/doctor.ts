import type { CommandModule } from 'yargs';
import { configFromArgv, runMain } from '../load.ts';
import { commonOptions, connectionOptions, replicationOptions, withOptions } from '../options.ts';

export const doctorCommand: CommandModule = {
  command: 'doctor',
  describe:
    'Check a PostgreSQL server before first use (wal_level, plugins, slots, WAL retention, replica identity, privileges, clock); exit 1 on any failure',
  builder: (y) =>
    withOptions(y, connectionOptions, replicationOptions, commonOptions).option('json', {
      type: 'boolean',
      describe: 'Print the findings as JSON',
    }),
  handler: async (argv) => {
    const config = configFromArgv(argv);
    await runMain(async () => {
      const { runDoctor } = await import('../../ops/run.ts');
      return runDoctor(config, Boolean(argv.json));
    });
  },
};
