// The yargs program; main.ts imports it only after checking the Node version.
import './v8-flags.ts';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { EXIT_CONFIG } from './load.ts';
import { commands } from './commands/index.ts';

// Heavy parts (pg, kafka, fastify) are imported by the command handlers, so --help and version stay fast.
await yargs(hideBin(process.argv))
  .scriptName('tag-connector')
  .usage('$0 <command> [options]')
  .command(commands)
  .demandCommand(1, 'Name a command: extract-tasks, start-job or version (see --help).')
  .strictCommands()
  .strictOptions()
  .recommendCommands()
  .env(false)
  .fail((msg, err) => {
    if (err) throw err;
    process.stderr.write(`tag-connector: ${msg}\nRun 'tag-connector --help' for usage.\n`);
    process.exit(EXIT_CONFIG);
  })
  .help()
  .alias('h', 'help')
  .version(false)
  .wrap(Math.min(120, process.stdout.columns || 100))
  .parseAsync();
