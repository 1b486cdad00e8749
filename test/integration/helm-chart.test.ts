import { describe, expect, it } from '@jest/globals';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

/**
 * The Helm chart (deploy/helm/tag-connector), checked with the real tools that script/bootstrap.d/60-helm
 * caches: helm v4 (built from the Go module proxy) lints and renders it, and kubernetes-validate (PyPI,
 * which bundles the Kubernetes JSON schemas: nothing is downloaded at run time) validates every rendered
 * object strictly against Kubernetes 1.37.
 */
const ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const CHART = join(ROOT, 'deploy', 'helm', 'tag-connector');
const CACHE = process.env.TAG_CONNECTOR_CACHE ?? join(homedir(), '.cache', 'tag-connector');

function tool(path: string | undefined, what: string): string {
  if (!path || !existsSync(path))
    throw new Error(`${what} is missing: run script/bootstrap (its step 60-helm builds and caches it)`);
  return path;
}
const helmDir = existsSync(CACHE)
  ? readdirSync(CACHE)
      .filter((d) => /^helm-v4\./.test(d))
      .sort()
      .at(-1)
  : undefined;
const HELM = tool(helmDir && join(CACHE, helmDir, 'bin', 'helm'), 'helm v4');
const VALIDATE = tool(
  join(CACHE, 'venv-kubernetes-validate', 'bin', 'kubernetes-validate'),
  'kubernetes-validate',
);

const REQUIRED = ['--set', 'startJob.ws=http://workspace:4000/graphql'];

type K8sObject = { apiVersion: string; kind: string; metadata: { name: string }; spec?: any }; // eslint-disable-line @typescript-eslint/no-explicit-any

function template(args: string[] = []): { yaml: string; objects: K8sObject[] } {
  const yaml = execFileSync(HELM, ['template', 'tc', CHART, ...REQUIRED, ...args], { encoding: 'utf8' });
  const objects = parseAllDocuments(yaml)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
  return { yaml, objects };
}

function validate(yaml: string): { ok: boolean; output: string } {
  const dir = mkdtempSync(join(tmpdir(), 'tagc-helm-'));
  const file = join(dir, 'rendered.yaml');
  writeFileSync(file, yaml);
  const r = spawnSync(VALIDATE, ['--strict', '--kubernetes-version', '1.37.0', file], { encoding: 'utf8' });
  return { ok: r.status === 0 && !/ERROR|FAIL/.test(r.stdout + r.stderr), output: r.stdout + r.stderr };
}

const find = (objects: K8sObject[], kind: string, suffix: string) =>
  objects.find((o) => o.kind === kind && o.metadata.name.endsWith(suffix))!;

describe('Helm chart deploy/helm/tag-connector', () => {
  it('passes helm lint --strict', () => {
    const out = execFileSync(HELM, ['lint', '--strict', CHART, ...REQUIRED], { encoding: 'utf8' });
    expect(out).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
  });

  it('renders objects that validate strictly against the Kubernetes 1.37 schemas', () => {
    const { yaml, objects } = template();
    const v = validate(yaml);
    expect(v.output).toMatch(/deployment\/tc-tag-connector-extract-tasks/);
    expect(v.ok).toBe(true);
    expect(objects.map((o) => o.kind).sort()).toEqual([
      'Deployment',
      'Deployment',
      'PodDisruptionBudget',
      'Service',
      'Service',
      'ServiceAccount',
    ]);
  });

  it('runs extract-tasks as leader + standby with probes, secrets as files, and start-job beside it', () => {
    const { yaml, objects } = template();
    const et = find(objects, 'Deployment', '-extract-tasks');
    expect(et.spec.replicas).toBe(2);
    const c = et.spec.template.spec.containers[0];
    expect(c.args).toEqual(['extract-tasks']);
    expect(c.livenessProbe.httpGet.path).toBe('/healthz');
    expect(c.readinessProbe.httpGet.path).toBe('/readyz?standby=ok');
    const env = Object.fromEntries(c.env.map((e: { name: string; value: string }) => [e.name, e.value]));
    expect(env.TAG_CONNECTOR_PASSWORD_FILE).toMatch(/^\/var\/run\/secrets\//);
    expect(env.TAG_CONNECTOR_AUTH_TOKENS_FILE).toMatch(/^\/var\/run\/secrets\//);
    expect(env.TAG_CONNECTOR_SERVER_HOST).toBe('0.0.0.0');
    const secrets = et.spec.template.spec.volumes
      .filter((v: { secret?: unknown }) => v.secret)
      .map((v: { secret: { secretName: string } }) => v.secret.secretName);
    expect(secrets.sort()).toEqual(['tag-connector-api-tokens', 'tag-connector-postgres']);
    // No secret value is ever rendered into the manifests.
    expect(yaml).not.toMatch(/PASSWORD"?\s*\n\s*value:/);
    const sj = find(objects, 'Deployment', '-start-job');
    const s = sj.spec.template.spec.containers[0];
    expect(s.args).toEqual(['start-job']);
    expect(s.readinessProbe.httpGet.path).toBe('/readyz');
    expect(s.livenessProbe.httpGet.path).toBe('/healthz');
  });

  it('readiness=leader: only the leader is ready, so rollouts recreate', () => {
    const { yaml, objects } = template(['--set', 'extractTasks.readiness=leader']);
    const et = find(objects, 'Deployment', '-extract-tasks');
    expect(et.spec.strategy.type).toBe('Recreate');
    expect(et.spec.template.spec.containers[0].readinessProbe.httpGet.path).toBe('/readyz');
    expect(validate(yaml).ok).toBe(true);
  });

  it('renders an optional ServiceMonitor that selects the extract-tasks Service and sends a token', () => {
    const { yaml, objects } = template(['--set', 'serviceMonitor.enabled=true']);
    const sm = find(objects, 'ServiceMonitor', 'tc-tag-connector');
    const svc = find(objects, 'Service', '-extract-tasks');
    expect(sm.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(svc.metadata).toBeDefined();
    expect(sm.spec.selector.matchLabels).toEqual(svc.spec.selector);
    expect(sm.spec.endpoints[0]).toMatchObject({ port: 'http', path: '/metrics' });
    expect(sm.spec.endpoints[0].authorization.credentials.name).toBe('tag-connector-api-tokens');
    // kubernetes-validate has no schema for the CRD: the core objects must still pass.
    const v = validate(yaml);
    expect(v.ok).toBe(true);
    expect(v.output).toMatch(/Couldn't find schema for kind ServiceMonitor/);
  });

  it('refuses values without secrets or auth, naming what is missing', () => {
    const fails = (args: string[], why: RegExp) => {
      const r = spawnSync(HELM, ['template', 'tc', CHART, ...REQUIRED, ...args], { encoding: 'utf8' });
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(why);
    };
    fails(['--set', 'postgres.passwordSecret.name='], /postgres\.passwordSecret\.name/);
    fails(['--set', 'auth.tokensSecret.name='], /auth\.tokensSecret\.name or auth\.oidcIssuer/);
    fails(['--set', 'auth.oidcIssuer=https://id.example'], /auth\.jwtAudience is required/);
    fails(['--set', 'startJob.ws='], /startJob\.ws/);
  });

  it('the validator rejects a broken object (so a pass means something)', () => {
    const { yaml } = template();
    expect(validate(yaml.replace('replicas: 2', 'replicas: two')).ok).toBe(false);
    expect(validate(yaml.replace('containerPort:', 'containerPortt:')).ok).toBe(false);
  });
});
