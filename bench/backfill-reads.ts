/**
 * The daemon's CPU per backfill read, in process and without servers: a chunk's rows as the database
 * sends them (sql.ts readChunk) → Rows (chunk-rows.ts) → mapper → packed events, as the pipeline's
 * emitReads chains them (sinks left out). The bench's backfill table by default.
 *
 *   node --max-semi-space-size=8 bench/backfill-reads.ts [rows=200000] [chunk=8192] [repeats=5]
 */
import { ChunkReadCursor } from '../src/extractor/backfill/windows.ts';
import type { ReadChange } from '../src/extractor/decode/index.ts';
import { EventPacker } from '../src/extractor/pipeline/event-packer.ts';
import { Mapper, type TxContext } from '../src/extractor/pipeline/mapper.ts';

const [rowsArg, chunkArg, repeatsArg] = process.argv.slice(2);
const total = Number(rowsArg ?? 200_000);
const chunkSize = Number(chunkArg ?? 8192);
const repeats = Number(repeatsArg ?? 5);

const columns = ['id', 'n', 'label', 'at'];
const types = ['bigint', 'integer', 'text', 'timestamp with time zone'];
const hex = (i: number) => (i * 2654435761).toString(16).padStart(8, '0');
function chunkText(from: number, n: number): string {
  const rows: string[][] = [];
  for (let i = from; i < from + n; i++)
    rows.push([String(i), String(i % 1000), hex(i).repeat(4), '2026-12-06 07:07:18.123456+00']);
  // the database's json_agg spacing
  return '[' + rows.map((r) => '[' + r.map((v) => JSON.stringify(v)).join(', ') + ']').join(', \n ') + ']';
}

const chunks: string[] = [];
for (let from = 1; from <= total; from += chunkSize)
  chunks.push(chunkText(from, Math.min(chunkSize, total - from + 1)));
const mapper = new Mapper({ database: 'bench', slot: 'bench', roles: {} });
const packer = new EventPacker();
const win = { lowLsn: 1n, changed: new Set<string>(), truncated: false };

for (let r = 0; r < repeats; r++) {
  const started = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  let events = 0;
  let seq = 0;
  for (const [k, text] of chunks.entries()) {
    const tx: TxContext = {
      xid: 1000 + k,
      commitLsn: BigInt(0x1000000 + k * 100),
      commitTime: '2026-12-06T07:07:18.5+00:00',
    };
    const reads = new ChunkReadCursor({ columns, types, rows: text }, ['id'], win);
    for (let row = reads.next(); row; row = reads.next()) {
      const change: ReadChange = {
        kind: 'read',
        lsn: '0/1000010',
        schema: 'public',
        table: 'bf_rows',
        new: row,
        old: null,
        pk: ['id'],
      };
      const m = mapper.map(
        { change, root: 'public.bf_rows', row, unchangedToast: [], pk: ['id'] },
        tx,
        ++seq,
      );
      packer.pack(m!.json, tx.commitLsn, seq, 'public.bf_rows', m!.type, m!.partitionkey, tx.commitTime);
      events++;
    }
    packer.release(Number.MAX_SAFE_INTEGER);
  }
  const us = Number(process.hrtime.bigint() - started) / 1000;
  const cpu = process.cpuUsage(cpu0);
  // CPU time is what a change is judged by on a shared machine (wall time moves with the load).
  console.log(
    `${events} reads: ${((cpu.user + cpu.system) / events).toFixed(2)} µs CPU, ${(us / events).toFixed(2)} µs wall per read`,
  );
}
