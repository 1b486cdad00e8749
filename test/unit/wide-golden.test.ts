import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from '@jest/globals';
import type { TableInfo } from '../../src/extractor/decode/catalog.ts';
import type { Change, RowChange } from '../../src/extractor/decode/changes.ts';
import { Mapper, type TxContext } from '../../src/extractor/pipeline/mapper.ts';
import { createPgoutputDecoder } from '../../src/extractor/decode/pgoutput.ts';
import { completeToast, toastToComplete } from '../../src/extractor/decode/toast.ts';
import { isToastable } from '../../src/extractor/decode/values.ts';
import { decodeWal2Json } from '../../src/extractor/decode/wal2json.ts';

/**
 * Golden events of the bench's captured workloads (bench/capture-fixtures.ts: 600 changes each of the
 * narrow table and of the wide one: jsonb with a quoted word, an é and a tab, text[] with a quoted
 * element, numeric, bytea, timestamptz, NULLs, a float, a TOASTed text that most updates leave
 * unchanged, REPLICA IDENTITY FULL), through each plugin's decoder, TOAST completion and the mapper
 * as the pipeline chains them. The hashes pin every byte of every event as the code wrote them before
 * the performance work of issue 22: a faster decoder or mapper must write the same bytes. A changed
 * hash is a changed event format, never to be updated without a reason in docs/design.md.
 */
const fixture = (name: string) => fileURLToPath(new URL(`../../bench/fixtures/${name}.txt`, import.meta.url));

/** The table as the catalog describes it: columns from the first wal2json INSERT, identity from an UPDATE. */
function tableOf(workload: string): TableInfo {
  const lines = readFileSync(fixture(`${workload}-wal2json`), 'utf8').split('\n');
  type Msg = {
    schema: string;
    table: string;
    columns: { name: string; type: string }[];
    identity?: unknown[];
  };
  const insert = JSON.parse(lines.find((l) => l.startsWith('{"action":"I"'))!) as Msg;
  const update = JSON.parse(lines.find((l) => l.startsWith('{"action":"U"'))!) as Msg;
  const name = `${insert.schema}.${insert.table}`;
  return {
    name,
    root: name,
    columns: insert.columns.map((c) => ({ name: c.name, type: c.type, toastable: isToastable(c.type) })),
    pk: ['id'],
    replicaIdentity: update.identity?.length === insert.columns.length ? 'f' : 'd',
  };
}

/** Each message's events, as NDJSON lines (row changes' `lsn`: a counter, the same for both plugins). */
function events(workload: string, plugin: 'wal2json' | 'pgoutput'): string[] {
  const info = tableOf(workload);
  const mapper = new Mapper({ database: 'db', slot: 'golden', roles: {} });
  const lines = readFileSync(fixture(`${workload}-${plugin}`), 'utf8')
    .trim()
    .split('\n');
  const pgoutput = createPgoutputDecoder();
  const out: string[] = [];
  let tx: TxContext | undefined;
  let seq = 0;
  let n = 0;
  for (const line of lines) {
    const walLsn = `0/${(0x1000 + n).toString(16).toUpperCase()}`;
    const decoded =
      plugin === 'wal2json'
        ? decodeWal2Json(Buffer.from(line), walLsn)
        : pgoutput(Buffer.from(line, 'hex'), walLsn);
    for (const change of ([] as Change[]).concat(decoded)) {
      if (change.kind === 'begin') {
        tx = { xid: change.xid, commitLsn: change.commitLsn, commitTime: change.commitTime };
        seq = 0;
      }
      if (change.kind !== 'insert' && change.kind !== 'update' && change.kind !== 'delete') continue;
      n++;
      const c: RowChange = { ...change, lsn: `0/${n.toString(16).toUpperCase()}` };
      let row = c.new;
      let unchangedToast: string[] = [];
      if (toastToComplete(c, info)) ({ row, unchangedToast } = completeToast(c, info));
      const e = mapper.map(
        {
          change: c,
          root: info.root,
          row,
          unchangedToast,
          pk: c.pk ?? info.pk,
          oldFull: info.replicaIdentity === 'f',
        },
        tx!,
        ++seq,
      );
      out.push(e!.json);
    }
  }
  return out;
}

const sha256 = (lines: string[]) =>
  createHash('sha256')
    .update(lines.join('\n') + '\n')
    .digest('hex');

describe('golden events of the bench workloads (byte for byte)', () => {
  // One hash per workload: both plugins write the very same bytes for the same WAL.
  const GOLDEN: Record<string, string> = {
    wide: '6ac24c6f74ce5f976471e3e15a2df62ebabedecdb7b6a1b971888b71b460667d',
    narrow: '318de404ca83446ed801834ef7037adf27ff680dbe39c49c9cdc55eca8d16ffe',
  };
  for (const workload of ['wide', 'narrow'])
    for (const plugin of ['wal2json', 'pgoutput'] as const)
      it(`${workload}, ${plugin}: every event as before`, () => {
        const lines = events(workload, plugin);
        expect(lines.length).toBe(600);
        if (sha256(lines) !== GOLDEN[workload]) {
          // name the first event that differs from the other plugin's (the hash alone says nothing)
          const other = events(workload, plugin === 'wal2json' ? 'pgoutput' : 'wal2json');
          const i = lines.findIndex((l, k) => l !== other[k]);
          if (i >= 0) expect(lines[i]).toBe(other[i]);
        }
        expect(sha256(lines)).toBe(GOLDEN[workload]);
      });

  it('wide: an update under REPLICA IDENTITY FULL fills the unchanged TOASTed text from the old row', () => {
    for (const plugin of ['wal2json', 'pgoutput'] as const) {
      const update = events('wide', plugin)
        .map((j) => JSON.parse(j) as { data: Record<string, unknown> & { after: Record<string, unknown> } })
        .find((e) => e.data.op === 'u')!;
      expect(update.data.changed).toEqual(['status', 'updated_at']);
      expect(update.data.unchanged_toast).toBeUndefined();
      expect((update.data.after.body as string).length).toBe(1920);
      expect(update.data.after.payload).toMatchObject({ comment: 'a "quoted" word, an é and a tab\there' });
      expect(update.data.after.tags).toEqual([
        expect.stringMatching(/^tag-/),
        expect.stringMatching(/^tag-/),
        'team "a"',
      ]);
    }
  });
});
