import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { type BenchContext, type Row, round } from '../lib/context.ts';
import { Daemon } from '../lib/daemon.ts';
import { createSlots, dropSlot, sql } from '../lib/db.ts';
import { memory } from '../lib/proc.ts';
import { sinkOutage } from './outage.ts';

/**
 * Peak RSS (VmHWM) of the daemon while one transaction of M rows streams through to the file sink.
 * The slot exists before the transaction, the daemon starts after its commit.
 */
async function oneTransaction(ctx: BenchContext, rowsInTx: number): Promise<Row> {
  const table = `public.mem_${rowsInTx}`;
  const slot = `mem_${rowsInTx}`;
  await sql(ctx.url, `CREATE TABLE ${table} (id bigint PRIMARY KEY, n int NOT NULL, label text NOT NULL)`);
  await createSlots(ctx.url, [slot]);
  ctx.log(`memory: one transaction of ${rowsInTx} rows`);
  await sql(
    ctx.url,
    `INSERT INTO ${table} SELECT g, g % 1000, md5(g::text) FROM generate_series(1, $1::bigint) g`,
    [rowsInTx],
  );
  const file = join(ctx.tmp, `${slot}.ndjson`);
  const d = new Daemon({ pgUrl: ctx.url, slot, table, sinks: ['file'], filePath: file });
  let peakSampled = 0;
  let peakHeapUsed = 0;
  const timer = setInterval(() => {
    peakSampled = Math.max(peakSampled, memory(d.pid).rss);
    if (d.url)
      d.metrics()
        .then((text) => {
          const m = /^tag_connector_process_nodejs_heap_size_used_bytes (\d+)/m.exec(text);
          if (m) peakHeapUsed = Math.max(peakHeapUsed, Number(m[1]));
        })
        .catch(() => undefined);
  }, 500);
  try {
    await d.waitStreaming();
    const info = await d.waitDelivered(rowsInTx, 60 * 60_000);
    const ms = Date.now() - d.streamingAt;
    const { hwm } = memory(d.pid);
    const row: Row = {
      scenario: 'memory',
      variant: `one ${rowsInTx.toLocaleString('en-US')}-row transaction → file sink`,
      events: info.sinks[0]?.delivered ?? rowsInTx,
      seconds: round(ms / 1000, 1),
      eventsPerSec: Math.round(rowsInTx / (ms / 1000)),
      peakRssMb: Math.round(hwm / 2 ** 20),
      note: `VmHWM (target ≤ 300 MB at 5M); JS heap used peaked at ~${Math.round(peakHeapUsed / 2 ** 20)} MB`,
      extra: {
        sampledPeakRssMb: Math.round(peakSampled / 2 ** 20),
        sampledPeakHeapUsedMb: Math.round(peakHeapUsed / 2 ** 20),
      },
    };
    ctx.log(JSON.stringify(row));
    return row;
  } finally {
    clearInterval(timer);
    await d.stop();
    await dropSlot(ctx.url, slot);
    await sql(ctx.url, `DROP TABLE ${table}`);
    rmSync(file, { force: true });
  }
}

export async function memoryScenario(ctx: BenchContext): Promise<Row[]> {
  const sizes = ctx.quick ? [200_000] : ctx.full ? [1_000_000, 5_000_000] : [1_000_000];
  if (ctx.quick) ctx.notes.push('memory: --quick streams a 200k-row transaction instead of 1M');
  if (!ctx.full && !ctx.quick) ctx.notes.push('memory: the 5M-row transaction runs with --full');
  const rows: Row[] = [];
  for (const size of sizes) rows.push(await oneTransaction(ctx, size));
  rows.push(...(await sinkOutage(ctx)));
  return rows;
}
