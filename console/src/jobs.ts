import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { api } from './api.ts';
import { duration, time } from './format.ts';
import { usePoll } from './hooks.ts';
import { Badge, ErrorNote, Section } from './ui.ts';

interface Run {
  id: string;
  kind: string;
  status: string;
  trigger: string;
  scheduledAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  durationMs: number | null;
  counts: Record<string, number> | null;
  error: string | null;
  etlContextId: string | number | null;
}

interface Jobs {
  initialSyncSucceeded: boolean;
  kinds: Record<
    string,
    { active: boolean; next: string | null; lastRefusal: { at: string; reason: string } | null }
  >;
  runs: Run[];
}

/** start-job's job API (GET /jobs, POST/DELETE /<kind>-jobs): runs, the next cron times, refusals. */
const PATHS: Record<string, string> = {
  'initial-sync': '/initial-sync-jobs',
  healing: '/healing-jobs',
  dump: '/dump-publication-graph-jobs',
};

export function JobsPage() {
  const jobs = usePoll(() => api<Jobs>('/jobs?limit=50'), 3000);
  const [note, setNote] = useState<string | null>(null);
  const [actionError, setActionError] = useState<Error | null>(null);
  const act = async (kind: string, method: 'POST' | 'DELETE') => {
    setNote(null);
    setActionError(null);
    try {
      await api(PATHS[kind]!, { method });
      setNote(`${method === 'POST' ? 'scheduled' : 'canceled'} ${kind}`);
      jobs.reload();
    } catch (err) {
      setActionError(err as Error);
    }
  };
  const kinds = jobs.data?.kinds ?? {};
  return html`<div>
    <${Section} title="Job kinds">
      <${ErrorNote} error=${actionError ?? jobs.error} />
      ${note && html`<p role="status">${note}</p>`}
      ${jobs.data && html`<p>Initial sync succeeded: ${jobs.data.initialSyncSucceeded ? 'yes' : 'not yet'}</p>`}
      <table>
        <thead>
          <tr>
            <th scope="col">Kind</th>
            <th scope="col">Active</th>
            <th scope="col">Next scheduled run</th>
            <th scope="col">Last refusal</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          ${Object.keys(PATHS).map((kind) => {
            const k = kinds[kind];
            return html`<tr key=${kind} data-kind=${kind}>
              <th scope="row">${kind}</th>
              <td>${k ? (k.active ? 'yes' : 'no') : '–'}</td>
              <td class="mono">${time(k?.next)}</td>
              <td>${k?.lastRefusal ? `${time(k.lastRefusal.at)}: ${k.lastRefusal.reason}` : ''}</td>
              <td>
                <div class="actions">
                  <button type="button" onClick=${() => act(kind, 'POST')}>Run ${kind}</button>
                  <button type="button" onClick=${() => act(kind, 'DELETE')}>Cancel ${kind}</button>
                </div>
              </td>
            </tr>`;
          })}
        </tbody>
      </table>
    <//>
    <${Section} title="Runs">
      <table>
        <thead>
          <tr>
            <th scope="col">Run</th>
            <th scope="col">Kind</th>
            <th scope="col">Status</th>
            <th scope="col">Trigger</th>
            <th scope="col">Scheduled</th>
            <th scope="col">Duration</th>
            <th scope="col">Counts</th>
            <th scope="col">ETL context</th>
            <th scope="col">Error</th>
          </tr>
        </thead>
        <tbody>
          ${(jobs.data?.runs ?? []).map(
            (r) =>
              html`<tr key=${r.id}>
                <th scope="row" class="mono">${r.id}</th>
                <td>${r.kind}</td>
                <td><${Badge} state=${r.status} /></td>
                <td>${r.trigger}</td>
                <td class="mono">${time(r.scheduledAt)}</td>
                <td class="num">${duration(r.durationMs)}</td>
                <td class="small">
                  ${
                    r.counts
                      ? Object.entries(r.counts)
                          .map(([k, v]) => `${k} ${v}`)
                          .join(', ')
                      : ''
                  }
                </td>
                <td>${r.etlContextId ?? ''}</td>
                <td class="error-text">${r.error ?? ''}</td>
              </tr>`,
          )}
        </tbody>
      </table>
    <//>
  </div>`;
}
