import { describe, expect, it } from '@jest/globals';
import { runCli } from '../../support/daemon.ts';

// Port 9 (discard) has no listener on loopback here: every connect is refused at once.
describe('a connection error names the service it was for, never its credentials', () => {
  it('start-job with an unreachable Mongo', async () => {
    const d = runCli([
      'start-job',
      '--ws',
      'http://127.0.0.1:9/graphql',
      '--mongo-addr',
      'mongodb://someone:s3cret@127.0.0.1:9/snapshots',
      '--serverPort',
      '0',
    ]);
    const { code } = await d.exit;
    expect(code).toBe(1);
    expect(d.stderr()).toMatch(
      /\[E_SERVICE\] Mongo \(mongodb:\/\/127\.0\.0\.1:9\/snapshots\): .*ECONNREFUSED/,
    );
    expect(d.stderr()).not.toContain('s3cret');
  });

  it('extract-tasks with an unreachable PostgreSQL', async () => {
    const d = runCli([
      'extract-tasks',
      '--pg-url',
      'postgres://u:s3cret@127.0.0.1:9/db',
      // no wait for a server that is not up yet (default 60 s): the error is the same, at once
      '--startup-wait-ms',
      '0',
      '--serverPort',
      '0',
    ]);
    const { code } = await d.exit;
    expect(code).toBe(1);
    expect(d.stderr()).toMatch(
      /\[E_SERVICE\] PostgreSQL \(postgres:\/\/127\.0\.0\.1:9\/db\): .*ECONNREFUSED/,
    );
    expect(d.stderr()).not.toContain('s3cret');
  });
});
