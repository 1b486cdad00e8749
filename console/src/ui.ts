import { html } from 'htm/preact';
import type { ComponentChildren } from 'preact';
import { ApiError } from './api.ts';

/** Small shared pieces of the pages. */
export function ErrorNote({ error }: { error: Error | null }) {
  if (!error) return null;
  const text = error instanceof ApiError ? `${error.code}: ${error.message}` : error.message;
  return html`<p class="error" role="alert">${text}</p>`;
}

export function Field({ label, value, id }: { label: string; value: ComponentChildren; id?: string }) {
  return html`<div class="field" data-field=${id}>
    <dt>${label}</dt>
    <dd>${value ?? '–'}</dd>
  </div>`;
}

export function Badge({ state }: { state: string | null | undefined }) {
  const s = state ?? 'unknown';
  const tone = /^(ok|streaming|leader|done|DONE|reserved|running|success)$/.test(s)
    ? 'good'
    : /^(failed|ERROR|lost|error|invalidated|canceled|cancelled)$/.test(s)
      ? 'bad'
      : 'warn';
  return html`<span class=${`badge ${tone}`}>${s}</span>`;
}

export function Section({ title, children }: { title: string; children: ComponentChildren }) {
  return html`<section aria-label=${title}>
    <h2>${title}</h2>
    ${children}
  </section>`;
}
