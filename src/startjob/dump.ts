import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { Publisher, SnapshotEvents } from './events.ts';
import type { SnapshotStore } from './store.ts';

/**
 * Dump job: the whole current state of the store as gzipped NDJSON (`{id, hash, snapshot_id, item}`
 * per line, id order) in `dir`, written to a temporary name and renamed when complete, then announced
 * by a `snapshot.dump_created` event with path, count, size and sha256 of the file.
 */
export interface DumpResult extends Record<string, unknown> {
  path: string;
  items: number;
  bytes: number;
  sha256: string;
}

export async function runDump(opts: {
  dumpId: string;
  dir: string;
  store: SnapshotStore;
  publisher: Publisher;
  events: SnapshotEvents;
  signal?: AbortSignal;
}): Promise<DumpResult> {
  const dir = resolve(opts.dir);
  await mkdir(dir, { recursive: true });
  const name = `workspace-dump-${opts.dumpId}.ndjson.gz`;
  const path = join(dir, name);
  const tmp = `${path}.partial`;
  let items = 0;
  const sha = createHash('sha256');
  const lines = async function* (
    source: AsyncIterable<{ _id: string; hash: string; snapshotId: string; doc: unknown }>,
  ) {
    for await (const d of source) {
      opts.signal?.throwIfAborted();
      items++;
      yield JSON.stringify({ id: d._id, hash: d.hash, snapshot_id: d.snapshotId, item: d.doc }) + '\n';
    }
  };
  const digest = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      sha.update(chunk);
      cb(null, chunk);
    },
  });
  try {
    await pipeline(opts.store.all(), lines, createGzip(), digest, createWriteStream(tmp), {
      signal: opts.signal,
    });
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  const result: DumpResult = { path, items, bytes: (await stat(path)).size, sha256: sha.digest('hex') };
  await opts.publisher.publish([
    opts.events.run(opts.dumpId, 'snapshot.dump_created', { ...result, file: name, format: 'ndjson+gzip' }),
  ]);
  return result;
}
