/**
 * The operator console (docs/console.md). Preact + htm: components in plain template literals, no
 * JSX compile step and about 5 KB gzipped for both, where hand-written DOM updates for six live pages
 * would be more code and more bugs; uPlot for the lag chart. Bundled by esbuild
 * (script/build-console.mjs) into dist/console; the page is served with a CSP that forbids inline code.
 */
import { html } from 'htm/preact';
import { render } from 'preact';
import { App, type Daemon } from './app.ts';
import '../styles.css';

const daemon: Daemon = document.body.dataset.daemon === 'start-job' ? 'start-job' : 'extract-tasks';
render(html`<${App} daemon=${daemon} />`, document.getElementById('app')!);
