#!/usr/bin/env node
// Runs a server as a child and kills it when the process that asked for it (argv[2]) dies, so a
// test run stopped by Ctrl-C or SIGKILL never leaves a server behind. Usage: guard.mjs PID -- CMD ARGS...
import { spawn } from 'node:child_process';

const [owner, sep, cmd, ...args] = process.argv.slice(2);
if (!owner || sep !== '--' || !cmd) {
  process.stderr.write('usage: guard.mjs OWNER_PID -- CMD [ARGS...]\n');
  process.exit(2);
}
const child = spawn(cmd, args, { stdio: 'inherit' });
const stop = (signal) => {
  if (child.exitCode === null && child.signalCode === null) child.kill(signal);
};
for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(s, () => stop(s === 'SIGHUP' ? 'SIGTERM' : s));
const timer = setInterval(() => {
  try {
    process.kill(Number(owner), 0);
  } catch {
    stop('SIGTERM');
    setTimeout(() => stop('SIGKILL'), 5000).unref();
  }
}, 500);
child.on('exit', (code, signal) => {
  clearInterval(timer);
  process.exit(code ?? (signal ? 1 : 0));
});
