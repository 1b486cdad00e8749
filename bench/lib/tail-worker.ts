/**
 * Tails the file sink's NDJSON in a thread of its own (polling every ~1 ms) and records, per event,
 * the time the line appeared minus the event's commit `time`. Events are grouped by the row's
 * `phase` column. Messages: {cmd:'collect'} → replies {phase: number[]} and forgets them.
 */
import { closeSync, existsSync, fstatSync, openSync, readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';

const { path } = workerData as { path: string };
const byPhase = new Map<string, number[]>();
let fd = -1;
let pos = 0;
let rest = '';
const buf = Buffer.alloc(1 << 20);
let stopped = false;

/** Epoch ms with the microseconds of an ISO timestamp ("…:05.123456Z" / "+00:00"). */
function epochMs(iso: string): number {
  const frac = /\.(\d+)/.exec(iso)?.[1] ?? '';
  return Date.parse(iso.replace(/\.\d+/, '')) + Number(`0.${frac || '0'}`) * 1000;
}

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
        if (!line) continue;
        const e = JSON.parse(line) as { time: string; data?: { after?: { phase?: string } } };
        const phase = e.data?.after?.phase ?? '?';
        let list = byPhase.get(phase);
        if (!list) byPhase.set(phase, (list = []));
        list.push(seenAt - epochMs(e.time));
      }
    }
  }
  setTimeout(poll, 1);
}

parentPort!.on('message', (m: { cmd: string }) => {
  if (m.cmd === 'collect') {
    parentPort!.postMessage(Object.fromEntries(byPhase));
    byPhase.clear();
  } else if (m.cmd === 'stop') {
    stopped = true;
    if (fd >= 0) closeSync(fd);
    parentPort!.close();
  }
});
poll();
