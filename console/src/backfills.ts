import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { api, ApiError } from './api.ts';
import { time } from './format.ts';
import { usePoll } from './hooks.ts';
import { Badge, ErrorNote, Section } from './ui.ts';

/** GET /v1/api/backfills (docs/backfill.md): one backfill and its tables' progress. */
interface Backfill {
  id: string;
  state: string;
  tables: { table: string; rows: number; chunks: number; lastKey: unknown; estimatedRows: number | null }[];
  startedAt: string | null;
  finishedAt: string | null;
  error: string | null;
}

function progress(rows: number, estimated: number | null) {
  const max = Math.max(estimated ?? 0, rows, 1);
  return { value: rows, max, pct: Math.min(100, Math.round((rows / max) * 100)) };
}

export function Backfills() {
  const list = usePoll(async () => {
    const body = await api<{ backfills: Backfill[] } | Backfill[]>('/v1/api/backfills');
    return Array.isArray(body) ? body : body.backfills;
  }, 3000);
  const [tables, setTables] = useState('');
  const [actionError, setActionError] = useState<Error | null>(null);
  if (list.error instanceof ApiError && list.error.status === 404)
    return html`<${Section} title="Backfills">
      <p class="muted" data-backfills="not-available">
        Backfills are not available on this daemon (GET /v1/api/backfills answered 404).
      </p>
    <//>`;
  const start = async (e: Event) => {
    e.preventDefault();
    setActionError(null);
    try {
      const names = tables
        .split(',')
        .map((t) => t.trim())
        .filter(Boolean);
      await api('/v1/api/backfills', { method: 'POST', body: JSON.stringify({ tables: names }) });
      setTables('');
      list.reload();
    } catch (err) {
      setActionError(err as Error);
    }
  };
  const cancel = async (id: string) => {
    setActionError(null);
    try {
      await api(`/v1/api/backfills/${encodeURIComponent(id)}`, { method: 'DELETE' });
      list.reload();
    } catch (err) {
      setActionError(err as Error);
    }
  };
  return html`<${Section} title="Backfills">
    <form class="filters" onSubmit=${start}>
      <label
        >Tables to backfill
        <input
          name="tables"
          placeholder="public.tasks, public.items"
          value=${tables}
          onInput=${(e: Event) => setTables((e.target as HTMLInputElement).value)}
      /></label>
      <button type="submit">Start backfill</button>
    </form>
    <${ErrorNote} error=${actionError ?? list.error} />
    ${(list.data ?? []).map(
      (b) =>
        html`<article class="card" key=${b.id}>
          <h3>Backfill ${b.id} <${Badge} state=${b.state} /></h3>
          <p class="muted">
            started ${time(b.startedAt)}${b.finishedAt ? `, finished ${time(b.finishedAt)}` : ''}
          </p>
          ${b.error && html`<p class="error">${b.error}</p>`}
          ${b.tables.map((t) => {
            const p = progress(t.rows, t.estimatedRows);
            // One string: htm drops the whitespace between an interpolation and a line break.
            const counts = `${t.rows}${t.estimatedRows !== null ? ` / ~${t.estimatedRows}` : ''} rows, ${t.chunks} chunks`;
            return html`<div class="progress-row">
              <span>${t.table}</span>
              <progress value=${p.value} max=${p.max} aria-label=${`${t.table}: ${p.pct}%`}></progress>
              <span class="num">${counts}</span>
            </div>`;
          })}
          ${
            (b.state === 'queued' || b.state === 'running') &&
            html`<button type="button" onClick=${() => cancel(b.id)}>Cancel backfill ${b.id}</button>`
          }
        </article>`,
    )}
    ${list.data && list.data.length === 0 && html`<p class="muted">No backfills yet.</p>`}
  <//>`;
}
