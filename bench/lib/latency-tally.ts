import { parentPort } from 'node:worker_threads';
import { epochMs } from '../../src/extractor/pipeline/commit-latency.ts';

/**
 * The tail workers' shared half (tail-worker.ts, kafka-tail-worker.ts): per event seen, its latency
 * (seen at − commit `time`) grouped by the row's `phase`, and the protocol with the bench:
 * {cmd:'collect'} → replies {phase: number[]} and forgets them; {cmd:'stop'} → `onStop`.
 */
export class LatencyTally {
  private readonly byPhase = new Map<string, number[]>();

  constructor(onStop: () => void) {
    parentPort!.on('message', (m: { cmd: string }) => {
      if (m.cmd === 'collect') {
        parentPort!.postMessage(Object.fromEntries(this.byPhase));
        this.byPhase.clear();
      } else if (m.cmd === 'stop') onStop();
    });
  }

  /** One event's JSON line, seen at `seenAt` (epoch ms). */
  record(json: string, seenAt: number): void {
    const e = JSON.parse(json) as { time: string; data?: { after?: { phase?: string } } };
    const phase = e.data?.after?.phase ?? '?';
    let list = this.byPhase.get(phase);
    if (!list) this.byPhase.set(phase, (list = []));
    list.push(seenAt - epochMs(e.time));
  }
}
