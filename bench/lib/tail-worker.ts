/**
 * Tails the file sink's NDJSON in a thread of its own (polling every ~1 ms) and records, per event,
 * the time the line appeared minus the event's commit `time`. Events are grouped by the row's
 * `phase` column. Messages: {cmd:'collect'} → replies {phase: number[]} and forgets them.
 */
import { closeSync, existsSync, fstatSync, openSync, readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { LatencyTally } from './latency-tally.ts';

const { path } = workerData as { path: string };
let fd = -1;
let pos = 0;
let rest = '';
const buf = Buffer.alloc(1 << 20);
let stopped = false;

const tally = new LatencyTally(() => {
  stopped = true;
  if (fd >= 0) closeSync(fd);
  parentPort!.close();
});

function poll(): void {
  if (stopped) return;
  if (fd < 0 && existsSync(path)) fd = openSync(path, 'r');
  if (fd >= 0) {
    for (;;) {
      const size = fstatSync(fd).size;
      if (size <= pos) break;
      const n = readSync(fd, buf, 0, Math.min(buf.length, size - pos), pos);
      const seenAt = performance.timeOrigin + performance.now();
      pos += n;
      const text = rest + buf.toString('utf8', 0, n);
      const lines = text.split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) {
        if (line) tally.record(line, seenAt);
      }
    }
  }
  setTimeout(poll, 1);
}

poll();
