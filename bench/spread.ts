/**
 * Spreads over several bench runs: for each catch-up row (scenario + variant) present in the given
 * results files, the median and the range of its rate, ratio and CPU per change, as a Markdown table:
 *
 *   node bench/spread.ts bench/results/2026-12-06.json /tmp/run2.json ...
 *
 * A results file holds one run (bench/run.ts writes bench/results/<date>.json); keep copies of the runs
 * to compare (the next run of the same day overwrites the file).
 */
import { readFileSync } from 'node:fs';
import type { Results, Row } from './lib/context.ts';

const files = process.argv.slice(2);
if (files.length === 0) {
  process.stderr.write('usage: spread.ts <results.json>...\n');
  process.exit(2);
}
const byRow = new Map<string, Row[]>();
for (const f of files) {
  const r = JSON.parse(readFileSync(f, 'utf8')) as Results;
  for (const row of r.rows) {
    const key = `${row.scenario} | ${row.variant}`;
    byRow.set(key, [...(byRow.get(key) ?? []), row]);
  }
}
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const spread = (xs: (number | undefined)[], digits: number) => {
  const v = xs.filter((x): x is number => x !== undefined);
  if (v.length === 0) return '';
  const f = (n: number) => n.toLocaleString('en-US', { maximumFractionDigits: digits });
  return v.length === 1 ? f(v[0]!) : `${f(median(v))} (${f(Math.min(...v))}–${f(Math.max(...v))})`;
};
/** A figure the row's note gives (catchup.ts writes them): `CPU 1.2× the …`, `1.4× the wal2json daemon`. */
const fromNote = (r: Row, re: RegExp) => {
  const m = re.exec(r.note ?? '');
  return m ? Number(m[1]) : undefined;
};
const lines = [
  '| scenario | variant | runs | events/s | ratio | CPU µs/change | CPU × bare reader | × wal2json daemon |',
  '| --- | --- | --- | --- | --- | --- | --- | --- |',
];
for (const [key, rows] of byRow) {
  lines.push(
    `| ${key} | ${rows.length} | ${spread(
      rows.map((r) => r.eventsPerSec),
      0,
    )} | ${spread(
      rows.map((r) => r.ratio),
      2,
    )} | ${spread(
      rows.map((r) => r.cpuUsPerChange),
      1,
    )} | ${spread(
      rows.map((r) => fromNote(r, /CPU ([\d.]+)× the wal2json bare reader's/)),
      2,
    )} | ${spread(
      rows.map((r) => fromNote(r, /([\d.]+)× the wal2json daemon/)),
      2,
    )} |`,
  );
}
process.stdout.write(lines.join('\n') + '\n');
