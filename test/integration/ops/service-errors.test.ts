import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { runCli } from '../../support/daemon.ts';
import { testDatabase } from '../../support/db.ts';

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

  describe('a sink that cannot be reached (after PostgreSQL was)', () => {
    let db: { url: string; drop: () => Promise<void> };
    beforeAll(async () => {
      db = await testDatabase('svcerr');
    });
    afterAll(async () => {
      await db?.drop();
    });

    it('Kafka', async () => {
      const d = runCli([
        'extract-tasks',
        '--pg-url',
        db.url,
        '--slot',
        'svcerr_kafka',
        '--sink',
        'kafka',
        '--kafka-brokers',
        '127.0.0.1:9',
        '--topic',
        'svcerr',
        '--serverPort',
        '0',
      ]);
      const { code } = await d.exit;
      expect(code).toBe(1);
      expect(d.stderr()).toMatch(/\[E_SERVICE\] Kafka \(127\.0\.0\.1:9\): /);
    });

    it('Pub/Sub (after the client gives up: 20 s)', async () => {
      const d = runCli(
        [
          'extract-tasks',
          '--pg-url',
          db.url,
          '--slot',
          'svcerr_pubsub',
          '--sink',
          'pubsub',
          '--project-id',
          'svcerr',
          '--topic',
          'svcerr',
          '--serverPort',
          '0',
        ],
        // No look-up of a GCE metadata server (off loopback) when the emulator fails.
        { PUBSUB_EMULATOR_HOST: '127.0.0.1:9', METADATA_SERVER_DETECTION: 'none' },
      );
      const { code } = await d.exit;
      expect(code).toBe(1);
      const line = d
        .stderr()
        .split('\n')
        .find((l) => l.includes('[E_SERVICE]'))!;
      expect(line).toMatch(
        /\[E_SERVICE\] Pub\/Sub \(project svcerr via emulator 127\.0\.0\.1:9\): .*ECONNREFUSED/,
      );
      // One error, not the client's list of every attempt's identical one.
      expect(line).not.toContain('Previous errors');
    }, 60_000);
  });
});
