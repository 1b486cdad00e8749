import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { buildConsole } from '../support/browser.ts';

/**
 * script/demo's body (script/lib/demo.ts; the shell script around it runs `script/bootstrap --core`
 * and builds the console, as beforeAll does here): its own private PostgreSQL with wal2json, nothing
 * of the test harness. --once exits after the summary; without it the demo prints the console URL and
 * keeps the daemon streaming until Ctrl-C, which stops everything it started.
 */
const ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');

interface Demo {
  proc: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<number | null>;
}

function demo(args: string[]): Demo {
  const proc = spawn(process.execPath, [join(ROOT, 'script', 'lib', 'demo.ts'), ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exit = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  return { proc, stdout: () => out, stderr: () => err, exit };
}

async function until<T>(
  what: string,
  d: Demo,
  probe: () => T | undefined | Promise<T | undefined>,
): Promise<T> {
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (d.proc.exitCode !== null)
      throw new Error(`demo exited ${d.proc.exitCode} before ${what}: ${d.stderr()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const refused = (url: string) =>
  fetch(url).then(
    () => false,
    () => true,
  );

describe('script/demo', () => {
  beforeAll(() => buildConsole());
  const running: Demo[] = [];
  afterAll(async () => {
    for (const d of running) if (d.proc.exitCode === null) d.proc.kill('SIGINT');
    await Promise.all(running.map((d) => d.exit));
  });

  it('--once: the workload, its events in the file and on stdout, a summary, exit 0', async () => {
    const out = mkdtempSync(join(tmpdir(), 'tagc-demo-'));
    const d = demo(['--once', '--out', out]);
    running.push(d);
    expect(await d.exit).toBe(0);
    const file = join(out, 'events.ndjson');
    const events = readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { type: string });
    const count = (type: string) => events.filter((e) => e.type === type).length;
    // 5 inserts, 3 + 2 updates, 1 delete in public.tasks; the tasks demo's ETL contexts and events.
    expect([count('row.insert'), count('row.update'), count('row.delete')]).toEqual([5, 5, 1]);
    expect(count('etl_context.created')).toBeGreaterThan(0);
    expect(count('etl_context.event')).toBeGreaterThan(0);
    expect(d.stderr()).toContain(`events written to ${file}: ${events.length}`);
    expect(d.stderr()).toMatch(/confirmed LSN: \d+\/[0-9A-F]+, slot lag: \d+ bytes/);
    // The stdout sink: the same events.
    expect(d.stdout().split('\n').filter(Boolean)).toHaveLength(events.length);
    expect(d.stderr()).not.toContain('console:');
  }, 120_000);

  it('without --once: prints the console URL, keeps streaming, stops everything on Ctrl-C', async () => {
    const out = mkdtempSync(join(tmpdir(), 'tagc-demo-'));
    const d = demo(['--out', out]);
    running.push(d);
    const base = await until('the console URL', d, () =>
      /running until Ctrl-C/.test(d.stderr())
        ? /console: (http:\/\/127\.0\.0\.1:\d+)\/console/.exec(d.stderr())?.[1]
        : undefined,
    );
    const pgUrl = /psql (postgres:\/\/\S+)/.exec(d.stderr())![1]!;

    const page = await fetch(`${base}/console`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    const info = (await (await fetch(`${base}/info`)).json()) as { state: string; role: string };
    expect(info).toMatchObject({ state: 'streaming', role: 'leader' });

    // Still running after the summary: a row written now reaches the file.
    const db = new pg.Client({ connectionString: pgUrl });
    await db.connect();
    await db.query(`INSERT INTO tasks (title) VALUES ('after the summary')`);
    await db.end();
    const file = join(out, 'events.ndjson');
    await until('the new row in the file', d, () =>
      readFileSync(file, 'utf8').includes('after the summary') ? true : undefined,
    );

    d.proc.kill('SIGINT');
    expect(await d.exit).toBe(0);
    await expect(refused(`${base}/healthz`)).resolves.toBe(true);
    const client = new pg.Client({ connectionString: pgUrl, connectionTimeoutMillis: 2000 });
    await expect(client.connect()).rejects.toThrow(/ECONNREFUSED/);
  }, 120_000);
});
