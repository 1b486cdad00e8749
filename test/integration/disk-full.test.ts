import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { FileSink } from '../../src/sinks/file.ts';
import { SinkRunner } from '../../src/sinks/runner.ts';
import type { Sink } from '../../src/sinks/sink.ts';
import { StreamLog } from '../../src/sinks/stream-log.ts';
import { comparePosition, formatPosition } from '../../src/util/lsn.ts';
import { makeEvents } from '../support/events.ts';
import { SmallFs } from '../support/small-fs.ts';

/**
 * Real ENOSPC: the file sink and the Stream retention write onto a 512 KiB tmpfs that a filler file
 * has nearly filled. The runner retries the failed batches; the filler goes after three failed
 * attempts (a short writev, then ENOSPC from the write of its rest: bytes on disk that must be cut); then every event must be there exactly once, with no torn line.
 */

const N = 800; // ~270 KiB of events: more than the disk holds beside the filler, less than without it

function runner(sink: Sink, failures: string[]) {
  const fatal: Error[] = [];
  const logger = pino(
    { level: 'warn' },
    { write: (s: string) => void failures.push((JSON.parse(s) as { err?: string }).err ?? s) },
  );
  const r = new SinkRunner(sink, {
    batchSize: 50,
    retryLimit: 1000,
    maxBackoffMs: 20,
    logger,
    onDurable: () => undefined,
    onFatal: (_s, err) => fatal.push(err),
  });
  return { r, fatal };
}

/** Pushes the events, frees the disk after the third failed attempt, waits for the drain. */
async function deliverThroughFullDisk(sink: Sink, disk: SmallFs) {
  const failures: string[] = [];
  const { r, fatal } = runner(sink, failures);
  await r.open();
  for (const e of makeEvents(0, N, { perTx: 5 })) r.push(e);
  while (failures.length < 3 && r.queued() > 0) await new Promise((res) => setTimeout(res, 5));
  const queuedAtFailure = r.queued();
  disk.free();
  await r.drain();
  await r.close();
  return { failures, fatal, queuedAtFailure, status: r.getStatus() };
}

function idsIn(files: string[]): string[] {
  return files.flatMap((f) =>
    readFileSync(f, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => (JSON.parse(l) as { id: string }).id),
  );
}

describe('a full disk (real ENOSPC on a small tmpfs)', () => {
  let disk: SmallFs;
  beforeEach(() => {
    disk = new SmallFs(512);
  });
  afterEach(() => disk?.unmount());

  it('file sink: the failed batches are cut back and written again: every event once, no torn line', async () => {
    disk.fill(64);
    const path = join(disk.dir, 'events.ndjson');
    const { failures, fatal, queuedAtFailure, status } = await deliverThroughFullDisk(
      new FileSink(path),
      disk,
    );
    const ids = idsIn([path]);
    const expected = makeEvents(0, N, { perTx: 5 }).map((e) => e.id);
    console.log(
      `file sink on a full disk: ${failures.length} ENOSPC failures (${failures[0]}), ${queuedAtFailure} events ` +
        `queued at the first; ${N} written, ${ids.length} lines in the file, ${ids.length - new Set(ids).size} duplicated`,
    );
    expect(fatal).toEqual([]);
    expect(failures.length).toBeGreaterThanOrEqual(3);
    expect(failures.every((f) => /ENOSPC/.test(f))).toBe(true);
    expect(queuedAtFailure).toBeGreaterThan(0);
    expect(ids).toEqual(expected);
    expect(status.delivered).toBe(N);
    const again = new FileSink(path);
    expect(await again.open()).toEqual(makeEvents(N - 1, 1, { perTx: 5 })[0]!.position);
    await again.close();
  });

  it('Stream retention: segments and meta survive ENOSPC; it holds exactly what it says it covers', async () => {
    const dir = join(disk.dir, 'stream');
    mkdirSync(dir);
    disk.fill(96);
    const log = new StreamLog({ dir, maxBytes: 256 * 1024, segmentBytes: 16 * 1024, startLsn: 0n });
    const { failures, fatal } = await deliverThroughFullDisk(log, disk);
    expect(fatal).toEqual([]);
    expect(failures.length).toBeGreaterThanOrEqual(3);
    const again = new StreamLog({ dir, maxBytes: 256 * 1024, segmentBytes: 16 * 1024, startLsn: 0n });
    const events = makeEvents(0, N, { perTx: 5 });
    expect(await again.open()).toEqual(events.at(-1)!.position);
    const { coveredAbove } = again.coverage();
    const expected = events.filter((e) => comparePosition(e.position, coveredAbove) > 0).map((e) => e.id);
    const onDisk = idsIn(
      readdirSync(dir)
        .filter((f) => f.endsWith('.ndjson'))
        .sort()
        .map((f) => join(dir, f)),
    );
    const replayed: string[] = [];
    for await (const r of again.replay(coveredAbove)) replayed.push(formatPosition(r.position));
    console.log(
      `retention on a full disk: ${failures.length} ENOSPC failures (${failures[0]}); ${N} written, covers ` +
        `${expected.length} (evicted ${N - expected.length}), ${onDisk.length} on disk, ` +
        `${onDisk.length - new Set(onDisk).size} duplicated, ${replayed.length} replayed`,
    );
    expect(expected.length).toBeLessThan(N); // evictions happened
    expect(onDisk).toEqual(expected);
    expect(replayed).toEqual(expected);
    expect(again.covers(events[0]!.position)).toBe(false);
    await again.close();
  });
});
