/** @services pg mongo */
import { afterEach, describe, expect, it } from '@jest/globals';
import { MongoClient } from 'mongodb';
import { runCli, type Daemon } from '../../support/daemon.ts';
import { freePort } from '../../support/ports.ts';
import { mongoUrl } from './helpers.ts';

/**
 * start-job talks to the workspace API and the OIDC provider when a run starts, not at start-up: a
 * failure there fails the run, and the run's error (GET /jobs, the console's Jobs page) names the
 * service. A free port that nobody listens on refuses every connect at once (fetch() will not even
 * try port 9, a port the Fetch standard blocks).
 */
const daemons: { d: Daemon; mongo: string }[] = [];
afterEach(async () => {
  for (const { d, mongo } of daemons.splice(0)) {
    await d.kill('SIGTERM');
    const client = await MongoClient.connect(mongo);
    await client.db().dropDatabase();
    await client.close();
  }
});

async function failedRunError(extra: string[]): Promise<string> {
  const port = await freePort();
  const mongo = mongoUrl();
  const d = runCli([
    'start-job',
    '--mongo-addr',
    mongo,
    '--start-initial-sync',
    '--ws-retries',
    '0',
    '--serverPort',
    String(port),
    ...extra,
  ]);
  daemons.push({ d, mongo });
  for (;;) {
    if (d.proc.exitCode !== null) throw new Error(`start-job exited ${d.proc.exitCode}: ${d.stderr()}`);
    const res = await fetch(`http://127.0.0.1:${port}/jobs?kind=initial-sync`).catch(() => null);
    if (res?.ok) {
      const { runs } = (await res.json()) as { runs: { status: string; error?: string }[] };
      const done = runs.find((r) => r.status === 'failed' || r.status === 'success');
      if (done) {
        expect(done.status).toBe('failed');
        return done.error ?? '';
      }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('start-job: a failed run names the service it could not reach', () => {
  it('the workspace API', async () => {
    const ws = `http://127.0.0.1:${await freePort()}/graphql`;
    const error = await failedRunError(['--ws', ws]);
    expect(error).toMatch(new RegExp(`^workspace API ${ws}: .*ECONNREFUSED`));
  });

  it('the OIDC provider (never its client secret)', async () => {
    const closed = await freePort();
    const error = await failedRunError([
      '--ws',
      `http://127.0.0.1:${closed}/graphql`,
      '--oidc',
      `http://127.0.0.1:${closed}/issuer`,
      '--client-id',
      'svcerr',
      '--client-secret',
      'svcerr-s3cret',
    ]);
    expect(error).toMatch(
      new RegExp(
        `the OIDC provider: discovery at http://127\\.0\\.0\\.1:${closed}/issuer.* failed: .*ECONNREFUSED`,
      ),
    );
    expect(error).not.toContain('s3cret');
  });
});
