import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitFor } from './ports.ts';
import { CACHE_DIR, type ServiceDef } from './services.ts';

/**
 * A one-node Apache Kafka broker in KRaft mode (broker + controller in one JVM) for tests, from the
 * jars script/bootstrap.d/10-kafka resolved into the cache. Random ports on 127.0.0.1, a temp data dir,
 * settings that allow transactions on one node. `stop()` / `start()` keep the port and the data dir, so
 * fault tests can take the broker away and bring it back as it was.
 */

const POM = new URL('./kafka/pom.xml', import.meta.url).pathname;
const GUARD = new URL('./guard.mjs', import.meta.url).pathname;

export function kafkaVersion(): string {
  const m = /<kafka\.version>([^<]+)<\/kafka\.version>/.exec(readFileSync(POM, 'utf8'));
  if (!m) throw new Error(`no <kafka.version> in ${POM}`);
  return m[1]!;
}

export function kafkaHome(): string {
  return join(CACHE_DIR, `kafka-${kafkaVersion()}`);
}

function kafkaAvailable(): boolean {
  return existsSync(join(kafkaHome(), '.complete')) && spawnSync('java', ['-version']).status === 0;
}

export interface KafkaBrokerOptions {
  /** Process whose death stops the broker (defaults to this process); 0 = none (services up). */
  ownerPid?: number;
  /** Extra server.properties lines. */
  settings?: Record<string, string | number>;
  /**
   * Port clients are told to use (a fault proxy in front of the broker) instead of the listener's own.
   * Kafka clients connect to the advertised address after bootstrap, so a proxy only sits in the path
   * when the broker advertises it; the broker's traffic to itself (transaction markers) then goes
   * through a listener of its own that is advertised as it is.
   */
  advertisedPort?: number;
}

export class KafkaBroker {
  readonly dir: string;
  port = 0;
  controllerPort = 0;
  private proc?: ChildProcess;
  private readonly options: KafkaBrokerOptions;

  constructor(options: KafkaBrokerOptions = {}, dir?: string) {
    this.options = options;
    this.dir = dir ?? mkdtempSync(join(tmpdir(), 'tagc-kafka-'));
  }

  /** `host:port` for `--kafka-brokers` / KAFKA_BROKERS. */
  get brokers(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** The broker JVM's pid (not the guard's). */
  get pid(): number | undefined {
    const p = this.proc?.pid;
    if (!p) return undefined;
    if (!this.guarded) return p;
    try {
      const kids = readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim().split(/\s+/);
      return kids[0] ? Number(kids[0]) : undefined;
    } catch {
      return undefined;
    }
  }

  private get owner(): number {
    return this.options.ownerPid ?? process.pid;
  }
  private get guarded(): boolean {
    return this.owner !== 0;
  }

  private java(mainClass: string, args: string[]): [string, string[]] {
    const jvm = [
      '-Xms128m',
      '-Xmx512m',
      '-XX:+UseSerialGC',
      '-XX:TieredStopAtLevel=1',
      '-XX:-UsePerfData',
      '-Djava.awt.headless=true',
      `-Dlog4j2.configurationFile=${join(this.dir, 'log4j2.properties')}`,
      `-Dkafka.logs.dir=${join(this.dir, 'logs')}`,
      '-cp',
      `${join(kafkaHome(), 'libs')}/*`,
      mainClass,
      ...args,
    ];
    return ['java', jvm];
  }

  /** Writes server.properties and formats the storage once. */
  async init(): Promise<this> {
    if (existsSync(join(this.dir, 'server.properties'))) {
      const saved = JSON.parse(readFileSync(join(this.dir, 'ports.json'), 'utf8')) as {
        port: number;
        controllerPort: number;
      };
      this.port = saved.port;
      this.controllerPort = saved.controllerPort;
      return this;
    }
    if (!kafkaAvailable()) {
      throw new Error(`Kafka jars not found in ${kafkaHome()}: run script/bootstrap (needs java and mvn)`);
    }
    this.port = await freePort();
    this.controllerPort = await freePort();
    const internalPort = this.options.advertisedPort ? await freePort() : 0;
    mkdirSync(join(this.dir, 'logs'), { recursive: true });
    const props: Record<string, string | number> = {
      'process.roles': 'broker,controller',
      'node.id': 1,
      'controller.quorum.voters': `1@127.0.0.1:${this.controllerPort}`,
      listeners: `PLAINTEXT://127.0.0.1:${this.port},CONTROLLER://127.0.0.1:${this.controllerPort}`,
      'advertised.listeners': `PLAINTEXT://127.0.0.1:${this.port}`,
      'controller.listener.names': 'CONTROLLER',
      'inter.broker.listener.name': 'PLAINTEXT',
      'listener.security.protocol.map': 'CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
      ...(internalPort
        ? {
            listeners:
              `PLAINTEXT://127.0.0.1:${this.port},CONTROLLER://127.0.0.1:${this.controllerPort},` +
              `INTERNAL://127.0.0.1:${internalPort}`,
            'advertised.listeners':
              `PLAINTEXT://127.0.0.1:${this.options.advertisedPort},` +
              `INTERNAL://127.0.0.1:${internalPort}`,
            'inter.broker.listener.name': 'INTERNAL',
            'listener.security.protocol.map': 'CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,INTERNAL:PLAINTEXT',
          }
        : {}),
      'log.dirs': join(this.dir, 'data'),
      'num.partitions': 1,
      'auto.create.topics.enable': 'true',
      'offsets.topic.replication.factor': 1,
      'offsets.topic.num.partitions': 3,
      'transaction.state.log.replication.factor': 1,
      'transaction.state.log.min.isr': 1,
      'transaction.state.log.num.partitions': 3,
      'min.insync.replicas': 1,
      'default.replication.factor': 1,
      'group.initial.rebalance.delay.ms': 0,
      'share.coordinator.state.topic.replication.factor': 1,
      'share.coordinator.state.topic.min.isr': 1,
      'log.segment.bytes': 16 * 1024 * 1024,
      'num.network.threads': 2,
      'num.io.threads': 2,
      'background.threads': 2,
      ...this.options.settings,
    };
    writeFileSync(
      join(this.dir, 'server.properties'),
      Object.entries(props)
        .map(([k, v]) => `${k}=${v}`)
        .join('\n') + '\n',
    );
    writeFileSync(
      join(this.dir, 'log4j2.properties'),
      [
        'status = warn',
        'appender.err.type = Console',
        'appender.err.name = STDERR',
        'appender.err.target = SYSTEM_ERR',
        'appender.err.layout.type = PatternLayout',
        'appender.err.layout.pattern = [%d] %p %m (%c)%n',
        'rootLogger.level = warn',
        'rootLogger.appenderRef.err.ref = STDERR',
        '',
      ].join('\n'),
    );
    writeFileSync(
      join(this.dir, 'ports.json'),
      JSON.stringify({ port: this.port, controllerPort: this.controllerPort }),
    );
    // A cluster id is 16 random bytes in URL-safe base64 without padding (what `random-uuid` prints).
    // As `--cluster-id=<id>`: one id in 64 starts with '-', which argparse took for an option.
    const clusterId = randomBytes(16).toString('base64url');
    const [cmd, args] = this.java('kafka.tools.StorageTool', [
      'format',
      `--cluster-id=${clusterId}`,
      '-c',
      join(this.dir, 'server.properties'),
      '--ignore-formatted',
    ]);
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`kafka storage format failed: ${r.stderr || r.stdout}`);
    return this;
  }

  async start(): Promise<this> {
    await this.init();
    const [cmd, args] = this.java('kafka.Kafka', [join(this.dir, 'server.properties')]);
    const [c, a] = this.guarded
      ? [process.execPath, [GUARD, String(this.owner), '--', cmd, ...args]]
      : [cmd, args];
    const proc = spawn(c, a, { stdio: ['ignore', 'ignore', 'pipe'], detached: !this.guarded });
    this.proc = proc;
    let stderr = '';
    proc.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    if (!this.guarded) proc.unref();
    await waitFor(
      `Kafka on port ${this.port}`,
      async () => {
        if (proc.exitCode !== null) throw new Error(`kafka exited (${proc.exitCode}): ${stderr}`);
        return (await brokerReady(this.port)) || undefined;
      },
      { timeoutMs: 90000, intervalMs: 250 },
    );
    proc.stderr?.removeAllListeners('data');
    proc.stderr?.resume();
    if (!this.guarded) proc.stderr?.destroy();
    return this;
  }

  /**
   * Stops the broker, keeping port and data: `clean` = SIGTERM (controlled shutdown), `kill` = SIGKILL
   * of the JVM (a crash). Resolves once the process is gone.
   */
  async stop(mode: 'clean' | 'kill' = 'clean'): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((r) => proc.once('exit', () => r()));
    if (mode === 'kill') {
      const jvm = this.pid;
      if (jvm) process.kill(jvm, 'SIGKILL');
      else proc.kill('SIGKILL');
    } else {
      proc.kill('SIGTERM');
    }
    const timer = setTimeout(() => {
      const jvm = this.pid;
      if (jvm) process.kill(jvm, 'SIGKILL');
      proc.kill('SIGKILL');
    }, 30000);
    await exited;
    clearTimeout(timer);
    this.proc = undefined;
  }

  async restart(mode: 'clean' | 'kill' = 'clean'): Promise<void> {
    await this.stop(mode);
    await this.start();
  }

  async destroy(): Promise<void> {
    await this.stop('kill');
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * Whether a Kafka broker answers an ApiVersions request (key 18, v0) on the port: the listener is open
 * only once the broker has caught up with its metadata log.
 */
function brokerReady(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(2000, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => {
      const clientId = Buffer.from('tagc-probe');
      const body = Buffer.alloc(2 + 2 + 4 + 2 + clientId.length);
      body.writeInt16BE(18, 0); // ApiVersions
      body.writeInt16BE(0, 2); // v0
      body.writeInt32BE(1, 4); // correlation id
      body.writeInt16BE(clientId.length, 8);
      clientId.copy(body, 10);
      const size = Buffer.alloc(4);
      size.writeInt32BE(body.length, 0);
      socket.write(Buffer.concat([size, body]));
    });
    let got = Buffer.alloc(0);
    socket.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      // size(4) correlation(4) error_code(2)
      if (got.length >= 10) done(got.readInt32BE(4) === 1 && got.readInt16BE(8) === 0);
    });
  });
}

export const service: ServiceDef = {
  name: 'kafka',
  available: kafkaAvailable,
  async start(ownerPid) {
    const broker = new KafkaBroker({ ownerPid });
    await broker.start();
    const pid = broker.pid;
    if (!pid) throw new Error('kafka: broker pid unknown');
    return {
      name: 'kafka',
      env: { KAFKA_BROKERS: broker.brokers, TAG_CONNECTOR_KAFKA_DIR: broker.dir },
      pids: [pid],
      dirs: [broker.dir],
      signal: 'SIGTERM',
    };
  },
};
