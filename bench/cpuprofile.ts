/**
 * Summarises a V8 .cpuprofile (from `node --cpu-prof`) as top self-time functions and top modules.
 *
 *   node bench/cpuprofile.ts <file.cpuprofile> [top=20] [fromMs toMs]
 *
 * The window (ms since the process started) leaves out start-up (module loading) and shutdown.
 */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileEntry {
  name: string;
  where: string;
  selfMs: number;
  pct: number;
}

export interface ProfileSummary {
  /** Busy time (all samples but idle), ms. */
  busyMs: number;
  idleMs: number;
  functions: ProfileEntry[];
  modules: ProfileEntry[];
}

const ROOT = fileURLToPath(new URL('..', import.meta.url));

function shortUrl(url: string): string {
  if (!url) return '';
  if (url.startsWith('node:')) return url;
  const path = url.startsWith('file://') ? fileURLToPath(url) : url;
  const nm = path.lastIndexOf('node_modules/');
  if (nm >= 0) return path.slice(nm);
  return path.startsWith('/') ? relative(ROOT, path) : path;
}

/** A module bucket: `src/extractor/wal2json.ts`, `pg-logical-replication`, `node:internal/...`, `(gc)`. */
function moduleOf(frame: CallFrame): string {
  const u = shortUrl(frame.url);
  if (!u) return frame.functionName.startsWith('(') ? frame.functionName : '(native)';
  const nm = /^node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(u);
  if (nm) return nm[1]!;
  if (u.startsWith('node:internal/')) return u.split('/').slice(0, 3).join('/');
  return u;
}

/** Milliseconds since the profile started (≈ process start): only samples inside count. */
export interface Window {
  fromMs: number;
  toMs: number;
}

export function summarise(profile: CpuProfile, top = 20, window?: Window): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  let at = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    const dt = profile.timeDeltas[i] ?? 0;
    at += dt;
    if (window && (at < window.fromMs * 1000 || at > window.toMs * 1000)) continue;
    self.set(id, (self.get(id) ?? 0) + dt);
  }
  const fn = new Map<string, { name: string; where: string; us: number }>();
  const mod = new Map<string, number>();
  let idleUs = 0;
  let busyUs = 0;
  for (const [id, us] of self) {
    const f = byId.get(id)!.callFrame;
    if (f.functionName === '(idle)') {
      idleUs += us;
      continue;
    }
    busyUs += us;
    const where = f.url ? `${shortUrl(f.url)}:${f.lineNumber + 1}` : '';
    const name = f.functionName || '(anonymous)';
    const key = `${name} ${where}`;
    const e = fn.get(key) ?? { name, where, us: 0 };
    e.us += us;
    fn.set(key, e);
    const m = moduleOf(f);
    mod.set(m, (mod.get(m) ?? 0) + us);
  }
  const pct = (us: number) => Math.round((1000 * us) / Math.max(1, busyUs)) / 10;
  return {
    busyMs: Math.round(busyUs / 1000),
    idleMs: Math.round(idleUs / 1000),
    functions: [...fn.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((e) => ({ name: e.name, where: e.where, selfMs: Math.round(e.us / 1000), pct: pct(e.us) })),
    modules: [...mod.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, where: '', selfMs: Math.round(us / 1000), pct: pct(us) })),
  };
}

export function summariseFile(path: string, top = 20, window?: Window): ProfileSummary {
  return summarise(JSON.parse(readFileSync(path, 'utf8')) as CpuProfile, top, window);
}

export function formatSummary(s: ProfileSummary): string {
  const lines = [`busy ${s.busyMs} ms (idle ${s.idleMs} ms)`, '', 'top self time by function:'];
  for (const e of s.functions)
    lines.push(`  ${String(e.pct).padStart(5)}%  ${String(e.selfMs).padStart(6)} ms  ${e.name}  ${e.where}`);
  lines.push('', 'top self time by module:');
  for (const e of s.modules)
    lines.push(`  ${String(e.pct).padStart(5)}%  ${String(e.selfMs).padStart(6)} ms  ${e.name}`);
  return lines.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [file, top, from, to] = process.argv.slice(2);
  if (!file) {
    process.stderr.write('usage: node bench/cpuprofile.ts <file.cpuprofile> [top] [fromMs toMs]\n');
    process.exit(2);
  }
  const window = from && to ? { fromMs: Number(from), toMs: Number(to) } : undefined;
  process.stdout.write(formatSummary(summariseFile(file, Number(top ?? 20), window)) + '\n');
}
