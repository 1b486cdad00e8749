#!/usr/bin/env -S node --max-semi-space-size=8
// A small young generation keeps RSS near the live set: V8 otherwise grows it to 32+ MB per
// semi-space under the allocation rate of a catch-up, tripling RSS. 8 MB, not 4: with the Kafka
// sink, events wait a transaction (tens of ms) for their acknowledgement, and a 4 MB young generation
// promoted them to the old one (bench, Kafka catch-up: +8-10% events/s; peak RSS of a 5M-row
// transaction ~10 MB higher).
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
