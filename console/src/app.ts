import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, getToken, onUnauthorized, setToken } from './api.ts';
import { Backfills } from './backfills.ts';
import { usePoll } from './hooks.ts';
import type { Info } from './info.ts';
import { JobsPage } from './jobs.ts';
import { Overview } from './overview.ts';
import { Sinks } from './sinks.ts';
import { LiveTail } from './tail.ts';
import { Tasks } from './tasks.ts';

export type Daemon = 'extract-tasks' | 'start-job';

const PAGES: Record<Daemon, { id: string; title: string }[]> = {
  'extract-tasks': [
    { id: 'overview', title: 'Overview' },
    { id: 'sinks', title: 'Sinks' },
    { id: 'tail', title: 'Live tail' },
    { id: 'backfills', title: 'Backfills' },
    { id: 'tasks', title: 'Tasks' },
  ],
  'start-job': [
    { id: 'jobs', title: 'Jobs' },
    { id: 'tasks', title: 'Tasks' },
  ],
};

function useHashPage(daemon: Daemon): string {
  const first = PAGES[daemon][0]!.id;
  const read = () => {
    const h = location.hash.replace(/^#\/?/, '');
    return PAGES[daemon].some((p) => p.id === h) ? h : first;
  };
  const [page, setPage] = useState(read);
  useEffect(() => {
    const on = () => setPage(read());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return page;
}

/** The token box: shown when the API answers 401. The token goes to sessionStorage only. */
function Login({ failed }: { failed: boolean }) {
  const [value, setValue] = useState('');
  const submit = (e: Event) => {
    e.preventDefault();
    setToken(value.trim());
    location.reload();
  };
  return html`<section class="login" aria-label="Sign in">
    <h2>Sign in</h2>
    <p>This daemon requires a bearer token (a static token or an OIDC access token).</p>
    ${failed && getToken() && html`<p class="error" role="alert">The token was refused.</p>`}
    <form onSubmit=${submit}>
      <label
        >API token
        <input
          type="password"
          name="token"
          autocomplete="off"
          required
          value=${value}
          onInput=${(e: Event) => setValue((e.target as HTMLInputElement).value)}
      /></label>
      <button type="submit">Sign in</button>
    </form>
    <p class="muted small">Kept for this browser tab only (sessionStorage), never put in a URL.</p>
  </section>`;
}

export function App({ daemon }: { daemon: Daemon }) {
  const page = useHashPage(daemon);
  const [unauthorized, setUnauthorized] = useState(false);
  useEffect(() => onUnauthorized(() => setUnauthorized(true)), []);
  const info = usePoll(() => (daemon === 'extract-tasks' ? api<Info>('/info') : Promise.resolve(null)), 2000);
  const authFailed = info.error instanceof ApiError && info.error.status === 401;
  const signOut = () => {
    setToken(null);
    location.reload();
  };
  const title = daemon === 'extract-tasks' ? 'extract-tasks' : 'start-job';
  return html`<div class="app">
    <header>
      <h1>tag-connector <span class="muted">${title}</span></h1>
      ${info.data && html`<span class="muted">${info.data.database} · slot ${info.data.slot}</span>`}
      ${getToken() && html`<button type="button" class="link" onClick=${signOut}>Sign out</button>`}
    </header>
    ${
      unauthorized || authFailed
        ? html`<main><${Login} failed=${unauthorized || authFailed} /></main>`
        : html`<nav aria-label="Pages">
              <ul>
                ${PAGES[daemon].map(
                  (p) =>
                    html`<li>
                      <a href=${`#${p.id}`} aria-current=${page === p.id ? 'page' : undefined}>${p.title}</a>
                    </li>`,
                )}
              </ul>
            </nav>
            <main>
              ${page === 'overview' && html`<${Overview} info=${info.data} error=${info.error} />`}
              ${page === 'sinks' && html`<${Sinks} info=${info.data} error=${info.error} />`}
              ${page === 'tail' && html`<${LiveTail} />`} ${page === 'backfills' && html`<${Backfills} />`}
              ${page === 'tasks' && html`<${Tasks} />`} ${page === 'jobs' && html`<${JobsPage} />`}
            </main>`
    }
  </div>`;
}
