import { afterAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The fault soak's CI version (docs/soak.md): `soak/run.ts --minutes 3` with a fixed seed. It starts its
 * own PostgreSQL, Kafka broker and pstest (it restarts and cuts them, so never the shared ones) and
 * fails here when a server is missing. File and Kafka read_committed must hold every change exactly
 * once, Pub/Sub at least once; the standby must take over a blackholed leader.
 */
const ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const SEED = 19;

describe('fault soak, 3 minutes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tagc-soaktest-'));
  let proc: ChildProcess | undefined;
  afterAll(async () => {
    // An aborted soak takes its servers and daemons along (they run under guards of its pid).
    if (proc && proc.exitCode === null) {
      const gone = new Promise((r) => proc!.once('exit', r));
      proc.kill('SIGKILL');
      await gone;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it(
    'loses and doubles nothing under SIGKILLs, restarts, broker stops and network faults',
    async () => {
      const json = join(dir, 'summary.json');
      let out = '';
      proc = spawn(
        process.execPath,
        [join(ROOT, 'soak', 'run.ts'), '--minutes', '3', '--seed', String(SEED), '--json', json],
        { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      const keep = (d: Buffer) => (out = (out + d.toString()).slice(-20_000));
      proc.stdout!.on('data', keep);
      proc.stderr!.on('data', keep);
      const code = await new Promise<number | null>((r) => proc!.once('exit', (c) => r(c)));
      process.stderr.write(out.slice(-3000));
      expect(code).toBe(0);
      const s = JSON.parse(readFileSync(json, 'utf8')) as {
        changes: number;
        faults: Record<string, number>;
        sinks: Record<string, { lost: number; duplicated: number; foreign: number; orderBreaks: number }>;
        ha: { trials: { takeoverMs?: number }[]; maxStreamingWalsenders: number };
      };
      expect(s.changes).toBeGreaterThan(10_000);
      expect(s.faults.sigkill).toBeGreaterThanOrEqual(5);
      expect(s.faults['ha-blackhole']).toBe(1);
      for (const sink of ['file', 'kafka'])
        expect(s.sinks[sink]).toMatchObject({ lost: 0, duplicated: 0, foreign: 0, orderBreaks: 0 });
      expect(s.sinks.pubsub).toMatchObject({ lost: 0, foreign: 0 });
      expect(s.ha.trials.every((t) => t.takeoverMs !== undefined)).toBe(true);
      expect(s.ha.maxStreamingWalsenders).toBeLessThanOrEqual(1);
    },
    15 * 60_000,
  );
});
