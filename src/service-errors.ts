import { ConnectorError } from './errors.ts';

/** The outside services a command talks to, as an operator names them. */
export type ServiceName =
  'PostgreSQL' | 'Mongo' | 'the workspace API' | 'the OIDC provider' | 'Kafka' | 'Pub/Sub';

/** A URL or address without its credentials, for messages (a URL's user:password never leaves). */
export function displayTarget(target: string): string {
  try {
    const url = new URL(target);
    if (!url.host) return target;
    url.username = '';
    url.password = '';
    url.search = '';
    return url.toString();
  } catch {
    return target.replace(/\/\/[^@/]*@/, '//');
  }
}

/**
 * Runs a step that talks to one outside service; a failure says which service and where, so that
 * `connect ECONNREFUSED 127.0.0.1:9` reads `Mongo (mongodb://127.0.0.1:9/x): connect ECONNREFUSED ...`.
 * A ConnectorError already carries its own remedy and passes through unchanged.
 */
export async function talkingTo<T>(service: ServiceName, target: string, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (err) {
    if (err instanceof ConnectorError) throw err;
    const e = err as Error & { code?: string };
    const detail = e.message || e.code || String(err);
    throw new ConnectorError('E_SERVICE', `${service} (${displayTarget(target)}): ${detail}`, 1, {
      cause: err,
    });
  }
}

/** Where a sink connects, for talkingTo; null for sinks that are not a remote service. */
export function sinkService(
  sinkName: string,
  where: { kafkaBrokers?: string | string[] | undefined; projectId?: string | undefined },
): [ServiceName, string] | null {
  if (sinkName === 'kafka') return ['Kafka', [where.kafkaBrokers ?? ''].flat().join(',')];
  if (sinkName === 'pubsub')
    return [
      'Pub/Sub',
      `project ${where.projectId ?? '(ADC default)'}${process.env.PUBSUB_EMULATOR_HOST ? ` via emulator ${process.env.PUBSUB_EMULATOR_HOST}` : ''}`,
    ];
  return null;
}

/** Opens a sink, naming its service when it fails. */
export async function openSink<T>(
  sink: { name: string; open(): Promise<T> },
  where: Parameters<typeof sinkService>[1],
): Promise<T> {
  const service = sinkService(sink.name, where);
  return service ? talkingTo(service[0], service[1], () => sink.open()) : sink.open();
}

/** The PostgreSQL a pg ClientConfig points at, without credentials. */
export function pgTarget(c: {
  connectionString?: string;
  host?: string;
  port?: number;
  database?: string;
}): string {
  if (c.connectionString) return displayTarget(c.connectionString);
  const host = c.host ?? process.env.PGHOST ?? 'localhost';
  const port = c.port ?? process.env.PGPORT ?? 5432;
  return `${host}:${port}/${c.database ?? process.env.PGDATABASE ?? ''}`;
}
