import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { runCli, waitStreaming, type Daemon } from '../support/daemon.ts';
import { testDatabase } from '../support/db.ts';
import { freePort } from '../support/ports.ts';

const ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const RULES = join(ROOT, 'deploy', 'prometheus', 'tag-connector-alerts.yaml');
const DASHBOARD = join(ROOT, 'deploy', 'grafana', 'tag-connector-dashboard.json');

interface Rule {
  alert: string;
  expr: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** Metric families named in PromQL: histogram series (_bucket, _sum, _count) belong to their family. */
function metricNames(text: string): Set<string> {
  return new Set(
    [...text.matchAll(/\btag_connector_[a-z0-9_]+/g)].map((m) => m[0].replace(/_(bucket|sum|count)$/, '')),
  );
}

describe('deploy/: alert rules and the Grafana dashboard name only metrics that /metrics exports', () => {
  let db: { url: string; drop: () => Promise<void> };
  let d: Daemon;
  let exposed: Set<string>;
  let leaderMetrics = '';
  const dir = mkdtempSync(join(tmpdir(), 'tagc-deploy-'));

  beforeAll(async () => {
    db = await testDatabase('deploy');
    const port = await freePort();
    d = runCli([
      'extract-tasks',
      '--pg-url',
      db.url,
      '--slot',
      'deploy_slot',
      '--sink',
      'file',
      '--file-path',
      join(dir, 'events.ndjson'),
      '--serverPort',
      String(port),
      '--stream-retention-dir',
      join(dir, 'stream'),
    ]);
    await waitStreaming(d);
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    leaderMetrics = text;
    exposed = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
  });
  afterAll(async () => {
    await d?.kill('SIGTERM');
    await db?.drop();
  });

  it('a standby reports tag_connector_leader 0 and is ready only when asked with standby=ok', async () => {
    const port = await freePort();
    const standby = runCli([
      'extract-tasks',
      '--pg-url',
      db.url,
      '--slot',
      'deploy_slot',
      '--sink',
      'file',
      '--file-path',
      join(dir, 'standby.ndjson'),
      '--serverPort',
      String(port),
      '--stream-retention-dir',
      join(dir, 'stream-standby'),
    ]);
    try {
      const base = `http://127.0.0.1:${port}`;
      for (let i = 0; !/"msg":"standby/.test(standby.stderr()); i++) {
        if (i > 600) throw new Error(`no standby: ${standby.stderr().slice(-2000)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      expect((await fetch(`${base}/readyz`)).status).toBe(503);
      const ready = await fetch(`${base}/readyz?standby=ok`);
      expect(ready.status).toBe(200);
      await expect(ready.json()).resolves.toMatchObject({ status: 'standby' });
      expect(await fetch(`${base}/metrics`).then((r) => r.text())).toMatch(/^tag_connector_leader 0$/m);
      expect(leaderMetrics).toMatch(/^tag_connector_leader 1$/m);
    } finally {
      await standby.kill('SIGTERM');
    }
  });

  it('the alert rules are well formed and cover the five conditions', () => {
    const doc = parseYaml(readFileSync(RULES, 'utf8')) as { groups: { name: string; rules: Rule[] }[] };
    const rules = doc.groups.flatMap((g) => g.rules);
    for (const r of rules) {
      expect(r.alert).toMatch(/^TagConnector[A-Za-z]+$/);
      expect(r.expr.trim()).not.toBe('');
      expect(['warning', 'critical']).toContain(r.labels?.severity);
      expect(r.annotations?.summary).toBeTruthy();
    }
    const names = rules.map((r) => r.alert);
    expect(names).toEqual(
      expect.arrayContaining([
        'TagConnectorSlotLagHigh',
        'TagConnectorSinkFailing',
        'TagConnectorNoLeader',
        'TagConnectorStreamResumePointExpired',
        'TagConnectorBackfillStalled',
      ]),
    );
  });

  it('every metric they name is exported', () => {
    const named = new Set([
      ...metricNames(readFileSync(RULES, 'utf8')),
      ...metricNames(readFileSync(DASHBOARD, 'utf8')),
    ]);
    const missing = [...named].filter((n) => !exposed.has(n)).sort();
    expect(missing).toEqual([]);
    expect(named.size).toBeGreaterThan(15);
  });

  it('the dashboard is importable JSON whose panels all query the templated data source', () => {
    const dash = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as {
      uid: string;
      panels: { type: string; datasource?: { uid: string }; targets?: { expr: string }[] }[];
    };
    expect(dash.uid).toBe('tag-connector');
    const graphs = dash.panels.filter((p) => p.type !== 'row');
    expect(graphs.length).toBeGreaterThan(10);
    for (const p of graphs) {
      expect(p.datasource?.uid).toBe('${datasource}');
      expect(p.targets?.length).toBeGreaterThan(0);
      for (const t of p.targets!) expect(t.expr).toMatch(/tag_connector_/);
    }
  });
});
