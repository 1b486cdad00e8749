import { afterEach, describe, expect, it } from '@jest/globals';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { FileSink } from '../../src/sinks/file.ts';
import { RESET_MARKER_TYPE, type CheckpointOrigin } from '../../src/sinks/origin.ts';
import { SinkRunner } from '../../src/sinks/runner.ts';
import type { OutboundEvent } from '../../src/sinks/sink.ts';
import { comparePosition, type Position } from '../../src/util/lsn.ts';
import { makeEvents } from '../support/events.ts';
import { FaultyFs, type Fault } from '../support/faulty-fs.ts';

const TMP = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tempFile(): string {
  const d = mkdtempSync(join(TMP, 'tagc-filesink-'));
  dirs.push(d);
  return join(d, 'events.ndjson');
}

const ids = (path: string) =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { id: string }).id);
const id = (e: OutboundEvent) => e.id;

/** Feeds events through a SinkRunner (its dedupe and retries) into the sink; resolves when drained. */
async function deliver(sink: FileSink, events: OutboundEvent[], retryLimit = 10) {
  const fatal: Error[] = [];
  const runner = new SinkRunner(sink, {
    batchSize: 5,
    retryLimit,
    maxBackoffMs: 1,
    logger: pino({ level: 'silent' }),
    onDurable: () => undefined,
    onFatal: (_s, err) => fatal.push(err),
  });
  await runner.open();
  for (const e of events) runner.push(e);
  await runner.drain();
  await runner.close();
  return { fatal, status: runner.getStatus() };
}

describe('file sink: a failed write or fsync is cut back before the retry', () => {
  const events = makeEvents(0, 40);

  it.each<[string, Fault]>([
    ['ENOSPC after part of a writev', { kind: 'error', code: 'ENOSPC', partial: 700 }],
    ['ENOSPC on a writev that wrote nothing', { kind: 'error', code: 'ENOSPC', partial: 0 }],
    ['EIO from fdatasync', { kind: 'error', code: 'EIO' }],
  ])('%s: every event once, no torn line', async (_name, fault) => {
    const path = tempFile();
    let failures = 0;
    // Every third write (or fsync) of the run fails, the first one at the second batch.
    const op = fault.partial === undefined ? 'datasync' : 'writev';
    let seen = 0;
    const fs = new FaultyFs((o) => (o === op && seen++ % 3 === 1 ? (failures++, fault) : undefined));
    const { fatal, status } = await deliver(new FileSink({ path, fs }), events);
    expect(fatal).toEqual([]);
    expect(failures).toBeGreaterThanOrEqual(4);
    expect(ids(path)).toEqual(events.map(id));
    expect(status.delivered).toBe(40);
    // And a reopen agrees: the file ends on a complete event.
    const again = new FileSink(path);
    expect(await again.open()).toEqual(events[39]!.position);
    await again.close();
  });

  it('stops with E_SINK_TORN, not a retry, when the cut itself fails', async () => {
    const path = tempFile();
    const fs = new FaultyFs((op, _p, call) =>
      op === 'writev' && call > 8
        ? { kind: 'error', code: 'EIO', partial: 100 }
        : op === 'truncate'
          ? { kind: 'error', code: 'EIO' }
          : undefined,
    );
    const { fatal } = await deliver(new FileSink({ path, fs }), events);
    expect(fatal).toHaveLength(1);
    expect(fatal[0]).toMatchObject({ code: 'E_SINK_TORN', exitCode: 6 });
    expect(fatal[0]!.message).toMatch(/stopping rather than retrying on a torn file/);
    // One failed write, one failed cut, and nothing written after it (no retry on the torn file).
    const ops = fs.calls.map((c) => c.op);
    expect(ops.filter((o) => o === 'truncate')).toHaveLength(1);
    expect(ops.slice(ops.indexOf('truncate')).filter((o) => o === 'writev')).toEqual([]);
  });
});

describe('file sink: open checks that the file ends on complete events', () => {
  const events = makeEvents(0, 6);
  const lines = (evs: OutboundEvent[]) => evs.map((e) => e.json + '\n').join('');

  it('cuts a torn last write (a crash inside a writev) and resumes after the last whole event', async () => {
    const path = tempFile();
    writeFileSync(path, lines(events.slice(0, 4)) + events[4]!.json.slice(0, 50));
    const sink = new FileSink(path);
    expect(await sink.open()).toEqual(events[3]!.position);
    await sink.close();
    expect(readFileSync(path, 'utf8')).toBe(lines(events.slice(0, 4)));
  });

  it.each([
    [
      'zeros at the end (a power loss)',
      (p: string) => appendFileSync(p, Buffer.alloc(64)),
      'not the start of an event',
    ],
    [
      'a torn line in the middle',
      (p: string) => appendFileSync(p, events[4]!.json.slice(0, 30) + '\n' + lines(events.slice(4))),
      'not JSON',
    ],
    ['a batch written twice', (p: string) => appendFileSync(p, lines(events.slice(2))), 'does not follow'],
  ])('refuses %s, naming the byte offset and the way out', async (_name, damage, what) => {
    const path = tempFile();
    writeFileSync(path, lines(events.slice(0, 4)));
    const size = readFileSync(path).length;
    damage(path);
    const err = await new FileSink(path).open().then(
      () => null,
      (e: unknown) => e as Error & { code: string; exitCode: number },
    );
    expect(err).toMatchObject({ code: 'E_SINK_FILE_DAMAGED', exitCode: 6 });
    expect(err!.message).toContain(what);
    expect(err!.message).toMatch(/at byte \d+/);
    expect(err!.message).toContain('truncate -s');
    expect(Number(/at byte (\d+)/.exec(err!.message)![1])).toBeGreaterThanOrEqual(size);
  });
});

describe('file sink crash points (every fs call of a run, through the fs seam)', () => {
  const events = makeEvents(0, 20);
  const origin: CheckpointOrigin = {
    systemId: '1',
    timeline: 1,
    database: 'd',
    slot: 's',
    slotIncarnation: 'x',
  };

  /** Two starts of the sink, each delivering from its checkpoint; returns the last acknowledged position. */
  async function run(path: string, fs: FaultyFs): Promise<Position | null> {
    let acked: Position | null = null;
    for (const part of [events.slice(0, 10), events.slice(10)]) {
      const sink = new FileSink({ path, fs });
      try {
        const cp = await sink.open();
        await sink.bindOrigin(origin);
        for (let i = 0; i < part.length; i += 4) {
          const batch = part.slice(i, i + 4).filter((e) => !cp || comparePosition(e.position, cp) > 0);
          if (!batch.length) continue;
          await sink.write(batch);
          acked = batch.at(-1)!.position;
        }
      } catch (err) {
        if (!fs.crashed) throw err;
        return acked;
      } finally {
        await sink.close();
      }
    }
    return acked;
  }

  it('a restart after a crash at any call holds every acknowledged event, once, and nothing torn', async () => {
    const probe = new FaultyFs();
    await run(tempFile(), probe);
    const faults: [number, Fault][] = [];
    probe.calls.forEach((c, n) => {
      faults.push([n, { kind: 'crash' }]);
      if (c.op === 'writev') faults.push([n, { kind: 'crash', partial: 500 }]);
    });
    expect(faults.length).toBeGreaterThan(30);
    for (const [at, fault] of faults) {
      const path = tempFile();
      const fs = new FaultyFs((_o, _p, call) => (call === at ? fault : undefined));
      const acked = await run(path, fs);
      expect(fs.crashed).toBe(true);
      const sink = new FileSink(path);
      const cp = await sink.open();
      if (acked) expect(cp && comparePosition(cp, acked)).toBeGreaterThanOrEqual(0);
      await sink.bindOrigin(origin);
      await sink.write(events.filter((e) => !cp || comparePosition(e.position, cp) > 0));
      await sink.close();
      expect({ at, fault, ids: ids(path) }).toEqual({ at, fault, ids: events.map(id) });
      expect(JSON.parse(readFileSync(`${path}.origin.json`, 'utf8'))).toEqual({ origin });
    }
  });

  it('a reset appends a marker line the next open reads as "no checkpoint" for the new origin', async () => {
    const path = tempFile();
    const sink = new FileSink(path);
    await sink.open();
    await sink.bindOrigin(origin);
    await sink.write(events.slice(0, 3));
    await sink.close();
    const other = { ...origin, systemId: '2' };
    const reset = {
      at: '2026-12-06T01:00:00.000Z',
      reason: 'r',
      previous: { position: '0/1000200/2', origin },
    };
    const s2 = new FileSink(path);
    expect(await s2.open()).toEqual(events[2]!.position);
    expect(s2.storedOrigin()).toEqual(origin);
    await s2.bindOrigin(other, reset);
    await s2.close();
    const last = JSON.parse(readFileSync(path, 'utf8').trimEnd().split('\n').at(-1)!) as {
      type: string;
      data: { origin: CheckpointOrigin };
    };
    expect(last).toMatchObject({ type: RESET_MARKER_TYPE, id: `reset/${reset.at}`, data: { origin: other } });
    // Even if the side file still named the old origin (a crash before it was replaced), the marker rules.
    writeFileSync(`${path}.origin.json`, JSON.stringify({ origin }));
    const s3 = new FileSink(path);
    expect(await s3.open()).toBeNull();
    expect(s3.storedOrigin()).toEqual(other);
    await s3.close();
  });
});
