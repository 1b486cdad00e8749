import { html } from 'htm/preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, sse } from './api.ts';
import { preview, time } from './format.ts';
import { ErrorNote, Section } from './ui.ts';

interface TailEvent {
  id: string;
  type: string;
  subject?: string;
  time?: string;
  data?: { table?: string; schema?: string; op?: string; after?: unknown; before?: unknown };
}

/** Rows kept on screen: the tail shows the newest, the Stream itself is the history. */
const KEEP = 200;
const KEEP_COMPACT = 10;

/**
 * The Stream (GET /v1/api/ws/Stream) as Server-Sent Events with table and type filters. Pause ends
 * the request; resume reconnects with Last-Event-ID, so nothing committed meanwhile is missed (as far
 * as the stream retention reaches back).
 */
export function LiveTail({ compact = false }: { compact?: boolean }) {
  const keep = compact ? KEEP_COMPACT : KEEP;
  const [table, setTable] = useState('');
  const [type, setType] = useState('');
  const [applied, setApplied] = useState({ table: '', type: '' });
  const [paused, setPaused] = useState(false);
  const [events, setEvents] = useState<TailEvent[]>([]);
  const [status, setStatus] = useState('connecting');
  const [error, setError] = useState<Error | null>(null);
  const lastId = useRef<string | undefined>(undefined);

  useEffect(() => {
    if (paused) {
      setStatus('paused');
      return;
    }
    const abort = new AbortController();
    const q = new URLSearchParams();
    if (applied.table) q.set('table', applied.table);
    if (applied.type) q.set('type', applied.type);
    const path = `/v1/api/ws/Stream${q.size ? `?${q}` : ''}`;
    let pending: TailEvent[] = [];
    let frame = 0;
    const flush = () => {
      frame = 0;
      const add = pending;
      pending = [];
      setEvents((old) => [...add.reverse(), ...old].slice(0, keep));
    };
    setStatus('connecting');
    setError(null);
    let retry: ReturnType<typeof setTimeout> | undefined;
    const connect = () => {
      setStatus('live');
      sse(
        path,
        (m) => {
          if (m.event === 'error') {
            setError(new Error(`stream closed: ${m.data}`));
            return;
          }
          if (m.id) lastId.current = m.id;
          try {
            pending.push(JSON.parse(m.data) as TailEvent);
          } catch {
            return;
          }
          if (pending.length > keep) pending.splice(0, pending.length - keep);
          frame ||= requestAnimationFrame(flush);
        },
        abort.signal,
        lastId.current,
      )
        .then(() => {
          if (abort.signal.aborted) return;
          setStatus('reconnecting');
          retry = setTimeout(connect, 2000);
        })
        .catch((err: Error) => {
          if (abort.signal.aborted) return;
          setError(err);
          // 4xx: filters or token refused; 503: the Stream is off on this daemon. Retrying won't help.
          if (err instanceof ApiError && (err.status < 500 || err.status === 503)) {
            setStatus('stopped');
            return;
          }
          setStatus('reconnecting');
          retry = setTimeout(connect, 2000);
        });
    };
    connect();
    return () => {
      abort.abort();
      clearTimeout(retry);
      cancelAnimationFrame(frame);
    };
  }, [paused, applied]);

  const submit = (e: Event) => {
    e.preventDefault();
    lastId.current = undefined;
    setEvents([]);
    setApplied({ table: table.trim(), type: type.trim() });
  };

  const controls = html`<form class="filters" onSubmit=${submit}>
    <label
      >Tables
      <input
        name="table"
        placeholder="public.tasks, audit.*"
        value=${table}
        onInput=${(e: Event) => setTable((e.target as HTMLInputElement).value)}
    /></label>
    <label
      >Types
      <input
        name="type"
        placeholder="row.insert, task.*"
        value=${type}
        onInput=${(e: Event) => setType((e.target as HTMLInputElement).value)}
    /></label>
    <button type="submit">Apply filters</button>
    <button type="button" aria-pressed=${paused} onClick=${() => setPaused(!paused)}>
      ${paused ? 'Resume' : 'Pause'}
    </button>
    <span class="status" role="status" data-tail-status=${status}>${status}, ${events.length} shown</span>
  </form>`;
  return html`<${Section} title=${compact ? 'Latest events' : 'Live tail'}>
    ${
      compact
        ? html`<p class="status" data-tail-status=${status}>
            ${status}: the newest ${KEEP_COMPACT} events of the Stream; the Live tail page filters them
          </p>`
        : controls
    }
    <${ErrorNote} error=${error} />
    <table class="tail">
      <thead>
        <tr>
          <th scope="col">Commit time</th>
          <th scope="col">Type</th>
          <th scope="col">Table</th>
          <th scope="col">Subject</th>
          <th scope="col">Id</th>
          <th scope="col">Row</th>
        </tr>
      </thead>
      <tbody>
        ${events.map(
          (e) =>
            html`<tr key=${e.id} data-type=${e.type}>
              <td class="mono">${time(e.time)}</td>
              <td>${e.type}</td>
              <td>
                ${e.data?.schema && e.data.table ? `${e.data.schema}.${e.data.table}` : (e.data?.table ?? '')}
              </td>
              <td>${e.subject ?? ''}</td>
              <td class="mono">${e.id}</td>
              <td class="mono small">${preview(e.data?.after ?? e.data?.before)}</td>
            </tr>`,
        )}
      </tbody>
    </table>
  <//>`;
}
