import { KafkaBroker } from '../test/support/kafka.ts';
import { PgCluster, createDatabase } from '../test/support/pg.ts';
import { PubSubEmulator } from '../test/support/pubsub.ts';
import { FaultProxy } from './proxy.ts';

/**
 * The soak's own servers, from the test harness, each started once: a PostgreSQL cluster (its own, since
 * the soak restarts it), a Kafka broker that advertises a fault proxy as its address, and pstest. Each
 * daemon reaches PostgreSQL through a proxy of its own (so one daemon's link can be cut alone) and the
 * broker through the shared Kafka proxy; the load and the oracle talk to PostgreSQL directly.
 */
export interface SoakServers {
  pg: PgCluster;
  /** The soak database, direct. */
  dbUrl: string;
  dbName: string;
  kafka: KafkaBroker;
  pubsub: PubSubEmulator;
  pgProxies: [FaultProxy, FaultProxy];
  kafkaProxy: FaultProxy;
  /** The soak database through daemon `i`'s proxy. */
  daemonDbUrl(i: 0 | 1): string;
  stop(): Promise<void>;
}

/** A server's session is ended this long after its peer went silent (see docs/soak.md). */
export const WAL_SENDER_TIMEOUT_S = 10;

export async function startServers(pgLogFile?: string): Promise<SoakServers> {
  const pg = new PgCluster({
    ...(pgLogFile ? { logFile: pgLogFile } : {}),
    settings: {
      wal_sender_timeout: `'${WAL_SENDER_TIMEOUT_S}s'`,
      // a restart mid-soak must not lose the slot's WAL: the reference slot holds it anyway
      max_slot_wal_keep_size: -1,
    },
  });
  const kafkaProxy = await new FaultProxy('kafka', { host: '127.0.0.1', port: 0 }).start();
  const kafka = new KafkaBroker({ advertisedPort: kafkaProxy.port });
  const pubsub = new PubSubEmulator();
  await Promise.all([pg.start(), kafka.start(), pubsub.start()]);
  kafkaProxy.retarget(kafka.port);
  const dbUrl = await createDatabase(pg.url(), 'soak');
  const dbName = new URL(dbUrl).pathname.slice(1);
  const pgProxies: [FaultProxy, FaultProxy] = [
    await new FaultProxy('pg-a', { host: '127.0.0.1', port: pg.port }).start(),
    await new FaultProxy('pg-b', { host: '127.0.0.1', port: pg.port }).start(),
  ];
  return {
    pg,
    dbUrl,
    dbName,
    kafka,
    pubsub,
    pgProxies,
    kafkaProxy,
    daemonDbUrl: (i) => `postgres://postgres@127.0.0.1:${pgProxies[i].port}/${dbName}`,
    async stop() {
      for (const p of [...pgProxies, kafkaProxy]) await p.stop().catch(() => undefined);
      await Promise.allSettled([pubsub.stop(), kafka.destroy(), pg.destroy()]);
    },
  };
}
