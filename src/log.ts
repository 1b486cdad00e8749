import { pino, type Logger } from 'pino';
import { logCensor, LOG_REDACT_PATHS } from './config/redact.ts';

export type { Logger };

/** JSON logs by default (to stderr, so stdout stays free for the stdout sink), pretty on a TTY. */
export function createLogger(level: string, options: { pretty?: boolean; name?: string } = {}): Logger {
  const pretty = options.pretty ?? Boolean(process.stderr.isTTY);
  return pino(
    {
      name: options.name ?? 'tag-connector',
      level,
      redact: { paths: LOG_REDACT_PATHS, censor: logCensor },
      ...(pretty
        ? { transport: { target: 'pino-pretty', options: { destination: 2, colorize: true } } }
        : {}),
    },
    pretty ? undefined : pino.destination({ fd: 2, sync: false }),
  );
}
