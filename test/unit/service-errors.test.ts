import { describe, expect, it } from '@jest/globals';
import { ConnectorError } from '../../src/errors.ts';
import { displayTarget, pgTarget, sinkService, talkingTo } from '../../src/service-errors.ts';

describe('service errors', () => {
  it('drop credentials and query strings from targets', () => {
    expect(displayTarget('mongodb://u:p@h:1/db?authSource=admin')).toBe('mongodb://h:1/db');
    expect(displayTarget('postgres://u:p@h/db')).toBe('postgres://h/db');
    expect(displayTarget('h1:9092,h2:9092')).toBe('h1:9092,h2:9092');
    expect(pgTarget({ host: 'db', port: 6432, database: 'w' })).toBe('db:6432/w');
  });
  it('name the service and where, keeping the cause', async () => {
    const cause = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' });
    const err = await talkingTo('Kafka', '127.0.0.1:9', () => Promise.reject(cause)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectorError);
    expect((err as ConnectorError).message).toBe('Kafka (127.0.0.1:9): connect ECONNREFUSED 127.0.0.1:9');
    expect((err as ConnectorError).cause).toBe(cause);
  });
  it('pass a ConnectorError through: it carries its own remedy', async () => {
    const own = new ConnectorError('E_WAL_LEVEL', 'wal_level is replica', 4);
    await expect(talkingTo('PostgreSQL', 'h', () => Promise.reject(own))).rejects.toBe(own);
  });
  it('know which sinks are remote services', () => {
    expect(sinkService('kafka', { kafkaBrokers: ['a:1', 'b:2'] })).toEqual(['Kafka', 'a:1,b:2']);
    expect(sinkService('pubsub', { projectId: 'p' })?.[0]).toBe('Pub/Sub');
    expect(sinkService('file', {})).toBeNull();
  });
});
