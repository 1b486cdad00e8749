import type { Row } from './context.ts';

const fmt = (v: number | undefined, digits = 0): string =>
  v === undefined || Number.isNaN(v) ? '' : v.toLocaleString('en-US', { maximumFractionDigits: digits });

/** A Markdown table (readable in a terminal and pasteable into the README). */
export function formatTable(rows: Row[]): string {
  const head = [
    'scenario',
    'variant',
    'events/s',
    'ratio',
    'CPU µs/change',
    'walsender µs/change',
    'p50 / p95 / p99 ms',
    'peak RSS MB',
    'busy main / kafka / other / walsender (main run-queue wait)',
    'note',
  ];
  const body = rows.map((r) => [
    r.scenario,
    r.variant,
    fmt(r.eventsPerSec),
    r.ratio === undefined ? '' : r.ratio.toFixed(2),
    fmt(r.cpuUsPerChange, 1),
    fmt(r.walsenderUsPerChange, 1),
    r.p50Ms === undefined ? '' : `${fmt(r.p50Ms, 1)} / ${fmt(r.p95Ms, 1)} / ${fmt(r.p99Ms, 1)}`,
    fmt(r.peakRssMb),
    r.busy
      ? [r.busy.main, r.busy.kafka ?? '–', r.busy.other, r.busy.walsender ?? '–']
          .map((v) => (typeof v === 'number' ? v.toFixed(2) : v))
          .join(' / ') + (r.busy.mainRunQueue !== undefined ? ` (${r.busy.mainRunQueue.toFixed(2)})` : '')
      : '',
    r.note ?? '',
  ]);
  const lines = [head, head.map(() => '---'), ...body].map((cells) => `| ${cells.join(' | ')} |`);
  return lines.join('\n');
}
