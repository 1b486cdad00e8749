import type { CommandModule } from 'yargs';
import { versionInfo } from '../../version.ts';

export const versionCommand: CommandModule = {
  command: 'version',
  describe: 'Print version, commit, Node and PostgreSQL client versions',
  builder: (y) => y.option('json', { type: 'boolean', describe: 'Print as JSON' }),
  handler: (argv) => {
    const v = versionInfo();
    if (argv.json) {
      process.stdout.write(JSON.stringify(v) + '\n');
      return;
    }
    process.stdout.write(
      `tag-connector ${v.version}\ncommit ${v.commit}\nnode ${v.node}\npg (node-postgres) ${v.pg}\npg-logical-replication ${v.pgLogicalReplication}\n`,
    );
  },
};
