import { html } from 'htm/preact';
import { useRef } from 'preact/hooks';
import { rate } from './format.ts';
import type { Info } from './info.ts';
import { Badge, ErrorNote, Section } from './ui.ts';

/** events/s from the change of `delivered` between two polls of /info. */
function useRates(info: Info | null): Map<string, number | null> {
  const last = useRef<{ at: number; delivered: Map<string, number> } | null>(null);
  const rates = useRef(new Map<string, number | null>());
  if (info) {
    const now = performance.now();
    const prev = last.current;
    const delivered = new Map(info.sinks.map((s) => [s.name, s.delivered]));
    if (!prev || now - prev.at > 500) {
      for (const s of info.sinks) {
        const before = prev?.delivered.get(s.name);
        rates.current.set(
          s.name,
          prev && before !== undefined ? ((s.delivered - before) * 1000) / (now - prev.at) : null,
        );
      }
      last.current = { at: now, delivered };
    }
  }
  return rates.current;
}

export function Sinks({ info, error }: { info: Info | null; error: Error | null }) {
  const rates = useRates(info);
  return html`<${Section} title="Sinks">
    <${ErrorNote} error=${error} />
    <table>
      <thead>
        <tr>
          <th scope="col">Sink</th>
          <th scope="col">State</th>
          <th scope="col">Checkpoint</th>
          <th scope="col">Events/s</th>
          <th scope="col">Delivered</th>
          <th scope="col">Queued</th>
          <th scope="col">Retries</th>
          <th scope="col">Last error</th>
        </tr>
      </thead>
      <tbody>
        ${(info?.sinks ?? []).map(
          (s) =>
            html`<tr key=${s.name} data-sink=${s.name}>
              <th scope="row">${s.name}</th>
              <td><${Badge} state=${s.state} /></td>
              <td class="mono">${s.checkpoint ?? '–'}</td>
              <td class="num">${rate(rates.get(s.name) ?? null)}</td>
              <td class="num">${s.delivered}</td>
              <td class="num">${s.queued}</td>
              <td class="num">${s.retries ?? '–'}</td>
              <td class="error-text">${s.lastError ?? ''}</td>
            </tr>`,
        )}
      </tbody>
    </table>
    ${info && info.sinks.length === 0 && html`<p>No sinks yet (a standby opens them when it takes over).</p>`}
  <//>`;
}
