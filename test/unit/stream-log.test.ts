import { afterEach, describe, expect, it } from '@jest/globals';
import {
  appendFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CheckpointOrigin } from '../../src/sinks/origin.ts';
import type { OutboundEvent } from '../../src/sinks/sink.ts';
import { StreamLog, type StreamLogOptions } from '../../src/sinks/stream-log.ts';
import { comparePosition, formatPosition, type Position } from '../../src/util/lsn.ts';
import { makeEvent, makeEvents } from '../support/events.ts';
import { FaultyFs, type Fault, type FsOp } from '../support/faulty-fs.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
/** On tmpfs where there is one: the crash runs make hundreds of fsyncs. */
const TMP = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
function tempDir(): string {
  const d = mkdtempSync(join(TMP, 'tagc-streamlog-'));
  dirs.push(d);
  return d;
}

/** One event is ~330 bytes: 1 KiB segments hold 3-4 events, the 3 KiB bound 3 segments. */
const SMALL = { segmentBytes: 1024, maxBytes: 3072, startLsn: 0x1000000n - 1n };

function log(dir: string, o: Partial<StreamLogOptions> = {}): StreamLog {
  return new StreamLog({ dir, ...SMALL, ...o });
}

async function replayAll(l: StreamLog, after: Position): Promise<string[]> {
  const ids: string[] = [];
  for await (const r of l.replay(after)) ids.push(formatPosition(r.position));
  return ids;
}

/** Every event line in the retention's segments, in file order. */
function linesOnDisk(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.ndjson'))
    .sort()
    .flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean))
    .map((l) => (JSON.parse(l) as { id: string }).id);
}

const BEFORE_ALL: Position = { commitLsn: 0n, seq: -1 };
const id = (e: OutboundEvent) => e.id;
const origin: CheckpointOrigin = {
  systemId: '7300000000000000001',
  timeline: 1,
  database: 'db',
  slot: 'slot',
  slotIncarnation: 'a',
};

describe('StreamLog', () => {
  it('starts empty, covering everything after the slot position it was created at', async () => {
    const dir = tempDir();
    const l = log(dir);
    expect(await l.open()).toBeNull();
    expect(l.coverage()).toEqual({ coveredAbove: { commitLsn: SMALL.startLsn, seq: -1 }, last: null });
    expect(l.covers({ commitLsn: SMALL.startLsn, seq: 0 })).toBe(true);
    expect(l.covers({ commitLsn: SMALL.startLsn - 1n, seq: 0 })).toBe(false);
    expect(await replayAll(l, BEFORE_ALL)).toEqual([]);
    expect(JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8'))).toEqual({
      coveredAboveLsn: '0/FFFFFF',
      coveredAboveSeq: -1,
    });
    await l.close();
  });

  it('replays what it holds after a position, in order, and reopens at its last event', async () => {
    const dir = tempDir();
    const events = makeEvents(0, 12);
    const l = log(dir, { maxBytes: 1 << 20 });
    await l.open();
    for (let i = 0; i < 12; i += 3) await l.write(events.slice(i, i + 3));
    expect(await replayAll(l, BEFORE_ALL)).toEqual(events.map(id));
    expect(await replayAll(l, events[4]!.position)).toEqual(events.slice(5).map(id));
    expect(await replayAll(l, events[11]!.position)).toEqual([]);
    // Several segments (1 KiB each), all kept under the 1 MiB bound.
    expect(readdirSync(dir).filter((f) => f.endsWith('.ndjson')).length).toBeGreaterThan(2);
    await l.close();
    const again = log(dir, { maxBytes: 1 << 20 });
    expect(await again.open()).toEqual(events[11]!.position);
    expect(await replayAll(again, events[2]!.position)).toEqual(events.slice(3).map(id));
    await again.close();
  });

  it('evicts the oldest segments past maxBytes: meta first, then a resume point there is refused', async () => {
    const dir = tempDir();
    const events = makeEvents(0, 40);
    const l = log(dir);
    await l.open();
    for (let i = 0; i < 40; i += 2) await l.write(events.slice(i, i + 2));
    const { coveredAbove, last } = l.coverage();
    expect(last).toEqual(events[39]!.position);
    expect(comparePosition(coveredAbove, events[0]!.position)).toBeGreaterThan(0);
    // What it says it covers is exactly what is on disk: everything above coveredAbove, once.
    const kept = events.filter((e) => comparePosition(e.position, coveredAbove) > 0).map(id);
    expect(linesOnDisk(dir)).toEqual(kept);
    expect(l.covers(events[0]!.position)).toBe(false);
    expect(l.covers(coveredAbove)).toBe(true);
    expect(await replayAll(l, coveredAbove)).toEqual(kept);
    const meta = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')) as { coveredAboveSeq: number };
    expect(meta.coveredAboveSeq).toBe(coveredAbove.seq);
    const bytes = readdirSync(dir)
      .filter((f) => f.endsWith('.ndjson'))
      .reduce((s, f) => s + readFileSync(join(dir, f)).length, 0);
    expect(bytes).toBeLessThanOrEqual(SMALL.maxBytes + SMALL.segmentBytes + 1024);
    await l.close();
  });

  it('gives live batches to subscribers after they are durable, until they unsubscribe', async () => {
    const dir = tempDir();
    const l = log(dir);
    await l.open();
    const seen: string[] = [];
    const off = l.subscribe((b) => seen.push(...b.map(id)));
    await l.write(makeEvents(0, 3));
    off();
    await l.write(makeEvents(3, 2));
    expect(seen).toEqual(makeEvents(0, 3).map(id));
    await l.close();
  });

  it('cuts a torn write and drops a segment created just before a crash', async () => {
    const dir = tempDir();
    const events = makeEvents(0, 6);
    const l = log(dir, { maxBytes: 1 << 20 });
    await l.open();
    await l.write(events.slice(0, 5));
    await l.close();
    const segs = readdirSync(dir).filter((f) => f.endsWith('.ndjson'));
    // A torn line at the end of the tail, and an empty newer segment (crash between create and write).
    appendFileSync(join(dir, segs.at(-1)!), events[5]!.json.slice(0, 40));
    writeFileSync(join(dir, '00000000ffffffff-00000000.ndjson'), '');
    const again = log(dir, { maxBytes: 1 << 20 });
    expect(await again.open()).toEqual(events[4]!.position);
    expect(readdirSync(dir)).not.toContain('00000000ffffffff-00000000.ndjson');
    await again.write(events.slice(4)); // the runner would skip event 4; the log keeps order anyway
    expect(linesOnDisk(dir).filter((x) => x === events[5]!.id)).toHaveLength(1);
    await again.close();
  });

  it('refuses a tail that is no torn write of an event, naming the byte offset', async () => {
    const dir = tempDir();
    const l = log(dir);
    await l.open();
    await l.write(makeEvents(0, 2));
    await l.close();
    const seg = readdirSync(dir).find((f) => f.endsWith('.ndjson'))!;
    const size = readFileSync(join(dir, seg)).length;
    appendFileSync(join(dir, seg), Buffer.alloc(100)); // zeros, as a power loss can leave
    await expect(log(dir).open()).rejects.toMatchObject({ code: 'E_SINK_FILE_DAMAGED', exitCode: 6 });
    await expect(log(dir).open()).rejects.toThrow(`at byte ${size}`);
  });

  it('a reset drops the old history and records itself in meta.json', async () => {
    const dir = tempDir();
    const l = log(dir);
    await l.open();
    await l.bindOrigin(origin);
    await l.write(makeEvents(0, 4));
    await l.close();
    const again = log(dir, { startLsn: 0x500n });
    expect(await again.open()).toEqual(makeEvent(3).position);
    expect(again.storedOrigin()).toEqual(origin);
    const other = { ...origin, systemId: '7300000000000000002' };
    const reset = { at: '2026-12-06T00:00:00.000Z', reason: 'test', previous: { position: null, origin } };
    await again.bindOrigin(other, reset);
    expect(again.coverage()).toEqual({ coveredAbove: { commitLsn: 0x500n, seq: -1 }, last: null });
    expect(linesOnDisk(dir)).toEqual([]);
    await again.close();
    const meta = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')) as Record<string, unknown>;
    expect(meta).toMatchObject({ coveredAboveLsn: '0/500', origin: other, resets: [reset] });
    const third = log(dir);
    expect(await third.open()).toBeNull();
    expect(third.storedOrigin()).toEqual(other);
    await third.close();
  });
});

/**
 * The scenario the crash points are injected into: 24 events in batches of 3 over 1 KiB segments and
 * a 3 KiB bound (segment creations and evictions all along), the log closed and opened again after
 * the first 12 (so the open of a log with segments is crashed too). Returns the position of the last
 * batch acknowledged before the fault.
 */
async function scenario(
  dir: string,
  fs: FaultyFs | undefined,
  events: OutboundEvent[],
): Promise<Position | null> {
  let acked: Position | null = null;
  for (const part of [events.slice(0, 12), events.slice(12)]) {
    const l = log(dir, fs ? { fs } : {});
    try {
      const cp = await l.open();
      for (let i = 0; i < part.length; i += 3) {
        const batch = part.slice(i, i + 3).filter((e) => !cp || comparePosition(e.position, cp) > 0);
        if (batch.length === 0) continue;
        await l.write(batch);
        acked = batch.at(-1)!.position;
      }
    } catch (err) {
      // A crash may also surface wrapped (a cut-back that crashed): the fs says whether it died.
      if (!fs?.crashed) throw err;
      return acked;
    } finally {
      await l.close().catch(() => undefined);
    }
  }
  return acked;
}

describe('StreamLog crash points (every fs call of a run, through the fs seam)', () => {
  const events = makeEvents(0, 24);
  const probe = new FaultyFs();

  it('counts the calls of a clean run', async () => {
    const dir = tempDir();
    await scenario(dir, probe, events);
    expect(probe.calls.length).toBeGreaterThan(60);
    expect([...new Set(probe.calls.map((c) => c.op))].sort()).toEqual(
      (
        [
          'mkdir',
          'open',
          'read',
          'stat',
          'readdir',
          'writev',
          'datasync',
          'fsyncDir',
          'rename',
          'unlink',
          'write',
        ] as FsOp[]
      ).sort(),
    );
  });

  it('after a crash at any call (and a torn write at every write), a restart holds every acknowledged event once, and covers exactly what it holds', async () => {
    const faults: [number, Fault][] = [];
    probe.calls.forEach((c, n) => {
      faults.push([n, { kind: 'crash' }]);
      if (c.op === 'writev' || c.op === 'write') faults.push([n, { kind: 'crash', partial: 100 }]);
    });
    let crashes = 0;
    for (const [at, fault] of faults) {
      const dir = tempDir();
      const fs = new FaultyFs((_op, _path, call) => (call === at ? fault : undefined));
      const acked = await scenario(dir, fs, events);
      if (fs.crashed) crashes++;
      // The restart: a new log over the same directory, fed again from its checkpoint, as the runner does.
      const l = log(dir);
      const cp = await l.open();
      if (acked) expect(cp && comparePosition(cp, acked)).toBeGreaterThanOrEqual(0);
      for (let i = 0; i < events.length; i += 3) {
        const batch = events.slice(i, i + 3).filter((e) => !cp || comparePosition(e.position, cp) > 0);
        if (batch.length) await l.write(batch);
      }
      const { coveredAbove } = l.coverage();
      const onDisk = linesOnDisk(dir);
      const expected = events.filter((e) => comparePosition(e.position, coveredAbove) > 0).map(id);
      expect({ at, fault, onDisk }).toEqual({ at, fault, onDisk: expected });
      expect(await replayAll(l, coveredAbove)).toEqual(expected);
      await l.close();
      rmSync(dir, { recursive: true, force: true });
    }
    expect(crashes).toBe(faults.length);
  });
});
