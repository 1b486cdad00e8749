import type { Logger } from '../../log.ts';
import type { DeadLetter, DeadLetterRoute, DeadLetterTarget } from './route.ts';

export {
  parseDeadLetterSpec,
  letterFields,
  type DeadLetter,
  type DeadLetterRoute,
  type DeadLetterTarget,
  type DeadLetterSpec,
} from './route.ts';
export { FileDeadLetters } from './file.ts';

/**
 * The dead-letter route over a target: each letter logged (its position and reason, never a value)
 * and counted; a target that fails is retried a few times, then the error stops the daemon (a letter
 * is never dropped).
 */
export function deadLetterRoute(
  target: DeadLetterTarget,
  o: { logger: Logger; count: (sink: string) => void; attempts?: number },
): DeadLetterRoute {
  return {
    async send(letter: DeadLetter): Promise<void> {
      const attempts = o.attempts ?? 5;
      for (let attempt = 1; ; attempt++) {
        try {
          await target.send(letter);
          break;
        } catch (err) {
          if (attempt >= attempts)
            throw new Error(`dead letter to ${target.name} failed: ${(err as Error).message}`);
          await new Promise((r) => setTimeout(r, 200 * attempt));
        }
      }
      o.count(letter.sink);
      o.logger.warn(
        {
          deadLetter: target.name,
          sink: letter.sink,
          topic: letter.topic,
          table: letter.table,
          lsn: letter.lsn,
          id: letter.id,
          reason: letter.reason,
        },
        'event sent to the dead letters',
      );
    },
  };
}
