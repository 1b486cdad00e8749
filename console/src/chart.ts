import { html } from 'htm/preact';
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { bytes } from './format.ts';

/**
 * The slot-lag chart. uPlot (about 50 KB minified) draws a time series on a canvas; a charting
 * library of its own would be more code than the rest of the console, and the big ones (Chart.js,
 * ECharts) would blow the 150 KB budget.
 */
export function LagChart({ samples }: { samples: { t: number; lagBytes: number }[] }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const data: uPlot.AlignedData = [samples.map((s) => s.t / 1000), samples.map((s) => s.lagBytes)];
  useEffect(() => {
    const el = box.current!;
    const width = Math.max(300, el.clientWidth || 600);
    plot.current = new uPlot(
      {
        width,
        height: 200,
        legend: { show: false },
        // Always the last hour, so a few samples don't stretch over a made-up range.
        scales: {
          x: {
            time: true,
            range: () => {
              const now = Date.now() / 1000;
              return [now - 3600, now];
            },
          },
          y: { range: (_u, _min, max) => [0, Math.max(1024, max * 1.1)] },
        },
        axes: [{}, { values: (_u, ticks) => ticks.map((v) => bytes(v)), size: 80 }],
        series: [{}, { label: 'slot lag', stroke: '#1f5fa8', fill: 'rgba(31,95,168,0.12)', width: 2 }],
      },
      data,
      el,
    );
    return () => plot.current?.destroy();
  }, []);
  useEffect(() => {
    plot.current?.setData(data);
  }, [samples]);
  const last = samples.at(-1);
  return html`<figure class="chart">
    <div ref=${box} role="img" aria-label="Slot lag over the last hour"></div>
    <figcaption>
      ${
        samples.length
          ? `${samples.length} ${samples.length === 1 ? 'sample' : 'samples'} of the last hour; latest ${bytes(last!.lagBytes)}`
          : 'No samples yet: the daemon samples the slot every 10 s while it streams.'
      }
    </figcaption>
  </figure>`;
}
