import { sleep } from './context.ts';

/**
 * Sends rows at `rate` per second until `stop(elapsedMs)` says so: each time rows are due, `insert`
 * gets their count (all that are due, or exactly `rowsPerStatement` once that many are), else it waits
 * `tickMs`. Returns the rows sent and the time it took.
 */
export async function paced(
  rate: number,
  stop: (elapsedMs: number) => boolean,
  insert: (rows: number) => Promise<unknown>,
  o: { tickMs: number; rowsPerStatement?: number },
): Promise<{ sent: number; ms: number }> {
  const start = performance.now();
  let sent = 0;
  for (;;) {
    const elapsed = performance.now() - start;
    if (stop(elapsed)) break;
    const due = Math.floor((rate * elapsed) / 1000) - sent;
    if (due >= (o.rowsPerStatement ?? 1)) {
      const rows = o.rowsPerStatement ?? due;
      await insert(rows);
      sent += rows;
    } else await sleep(o.tickMs);
  }
  return { sent, ms: performance.now() - start };
}
