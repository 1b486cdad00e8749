import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { api, ApiError } from './api.ts';
import { preview, time } from './format.ts';
import { usePoll } from './hooks.ts';
import { Badge, ErrorNote, Section } from './ui.ts';

interface Context {
  id: number;
  parentId: number | null;
  queue: string;
  status: string;
  createdAt: string;
  modifiedAt: string;
  eventCount?: number;
  subtaskCount?: number;
}

interface StoredEvent {
  id: number;
  type: string;
  payload: unknown;
  meta: unknown;
  error: boolean;
  createdAt: string;
}

/** GET /v1/api/etl-contexts and /v1/api/etl-contexts/{id}/events: tasks and one task's timeline. */
export function Tasks() {
  const [status, setStatus] = useState('');
  const [queue, setQueue] = useState('');
  const [selected, setSelected] = useState<number | null>(null);
  const [knownQueues, setKnownQueues] = useState<string[]>([]);
  const list = usePoll(
    async () => {
      const q = new URLSearchParams({ limit: '100' });
      if (status) q.set('status', status);
      if (queue) q.set('queue', queue);
      const body = await api<{ contexts: Context[]; counts: Record<string, number>; queues: string[] }>(
        `/v1/api/etl-contexts?${q}`,
      );
      setKnownQueues((old) => [...new Set([...old, ...body.queues])].sort());
      return body;
    },
    5000,
    [status, queue],
  );
  if (list.error instanceof ApiError && list.error.status === 404)
    return html`<${Section} title="ETL contexts and tasks">
      <p class="muted" data-tasks="not-available">${list.error.message}</p>
    <//>`;
  const counts = list.data?.counts;
  return html`<div>
    <${Section} title="ETL contexts and tasks">
      <form class="filters" onSubmit=${(e: Event) => e.preventDefault()}>
        <label
          >Status
          <select
            name="status"
            value=${status}
            onChange=${(e: Event) => setStatus((e.target as HTMLSelectElement).value)}
          >
            <option value="">any</option>
            <option value="OPEN">OPEN</option>
            <option value="DONE">DONE</option>
            <option value="ERROR">ERROR</option>
          </select></label
        >
        <label
          >Queue
          <select
            name="queue"
            value=${queue}
            onChange=${(e: Event) => setQueue((e.target as HTMLSelectElement).value)}
          >
            <option value="">any</option>
            ${knownQueues.map((q) => html`<option value=${q}>${q}</option>`)}
          </select></label
        >
        ${
          counts &&
          html`<span class="status"
            >open ${counts.OPEN ?? 0}, done ${counts.DONE ?? 0}, error ${counts.ERROR ?? 0}</span
          >`
        }
      </form>
      <${ErrorNote} error=${list.error} />
      <table>
        <thead>
          <tr>
            <th scope="col">Context</th>
            <th scope="col">Queue</th>
            <th scope="col">Status</th>
            <th scope="col">Parent</th>
            <th scope="col">Events</th>
            <th scope="col">Subtasks</th>
            <th scope="col">Modified</th>
          </tr>
        </thead>
        <tbody>
          ${(list.data?.contexts ?? []).map(
            (c) =>
              html`<tr key=${c.id} class=${selected === c.id ? 'selected' : ''}>
                <th scope="row">
                  <button type="button" class="link" onClick=${() => setSelected(c.id)}>#${c.id}</button>
                </th>
                <td>${c.queue}</td>
                <td><${Badge} state=${c.status} /></td>
                <td>${c.parentId ?? ''}</td>
                <td class="num">${c.eventCount ?? ''}</td>
                <td class="num">${c.subtaskCount ?? ''}</td>
                <td class="mono">${time(c.modifiedAt)}</td>
              </tr>`,
          )}
        </tbody>
      </table>
    <//>
    ${selected !== null && html`<${Timeline} id=${selected} key=${selected} onSelect=${setSelected} />`}
  </div>`;
}

function Timeline({ id, onSelect }: { id: number; onSelect: (id: number) => void }) {
  const events = usePoll(() => api<{ events: StoredEvent[] }>(`/v1/api/etl-contexts/${id}/events`), 5000, [
    id,
  ]);
  const detail = usePoll(
    () => api<{ context: Context; subtasks: Context[] }>(`/v1/api/etl-contexts/${id}`),
    5000,
    [id],
  );
  return html`<${Section} title=${`Timeline of context #${id}`}>
    <${ErrorNote} error=${events.error ?? detail.error} />
    <ol class="timeline" data-timeline=${id}>
      ${(events.data?.events ?? []).map(
        (e) =>
          html`<li key=${e.id} class=${e.error ? 'error-event' : ''}>
            <span class="mono">${time(e.createdAt)}</span>
            <strong>${e.type}</strong>
            ${e.error && html`<${Badge} state="error" />`}
            <code>${preview(e.payload, 240)}</code>
          </li>`,
      )}
    </ol>
    ${
      detail.data &&
      detail.data.subtasks.length > 0 &&
      html`<h3>Subtasks</h3>
        <ul class="subtasks">
          ${detail.data.subtasks.map(
            (s) =>
              html`<li key=${s.id}>
                <button type="button" class="link" onClick=${() => onSelect(s.id)}>#${s.id}</button>${' '}
                ${s.queue}${' '}<${Badge} state=${s.status} />
              </li>`,
          )}
        </ul>`
    }
  <//>`;
}
