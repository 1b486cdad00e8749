import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy on loopback that injects network faults between a daemon and a server: added latency,
 * resets (every connection closed with RST) and a blackhole (half-open: connections stay up, new ones
 * are accepted, every byte either way is swallowed; no FIN, no RST reaches anyone, as when a cable is
 * pulled between two hosts). Healing a blackhole resets the connections that lived through it: their
 * streams lost bytes, and a real peer answers the next segment of a forgotten connection with RST.
 *
 * Ours rather than Toxiproxy: the soak drives it in-process from its seeded schedule (no HTTP control
 * API, no Go build step), and it reports the upstream client ports of its connections, which is how
 * the soak tells which daemon owns a walsender in pg_stat_replication.
 */
export class FaultProxy {
  port = 0;
  private server?: Server;
  private readonly pairs = new Set<Pair>();
  private latencyMs = 0;
  private blackholed = false;
  /** Pairs that saw a blackhole: reset when it heals. */
  private readonly tainted = new Set<Pair>();

  readonly name: string;
  private readonly target: { host: string; port: number };

  constructor(name: string, target: { host: string; port: number }) {
    this.name = name;
    this.target = target;
  }

  async start(port = 0): Promise<this> {
    const server = createServer({ noDelay: true }, (client) => this.accept(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    const addr = server.address();
    this.port = typeof addr === 'object' && addr ? addr.port : 0;
    this.server = server;
    return this;
  }

  /** Re-targets new connections (a server that came back on another port). */
  retarget(port: number): void {
    this.target.port = port;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Local ports of the proxy's upstream sockets: `client_port` in pg_stat_activity. */
  upstreamPorts(): Set<number> {
    const out = new Set<number>();
    for (const p of this.pairs) if (p.upstream.localPort) out.add(p.upstream.localPort);
    return out;
  }

  connections(): number {
    return this.pairs.size;
  }

  setLatency(ms: number): void {
    this.latencyMs = ms;
  }

  blackhole(): void {
    this.blackholed = true;
    for (const p of this.pairs) this.tainted.add(p);
  }

  /** Ends a blackhole (resetting what lived through it) and any latency. */
  heal(): void {
    this.latencyMs = 0;
    if (!this.blackholed) return;
    this.blackholed = false;
    for (const p of this.tainted) p.reset();
    this.tainted.clear();
  }

  /** Closes every connection with RST (a middlebox or peer that dropped its state). */
  reset(): void {
    for (const p of [...this.pairs]) p.reset();
  }

  async stop(): Promise<void> {
    this.heal();
    this.reset();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  private accept(client: Socket): void {
    const upstream = connect({ host: this.target.host, port: this.target.port, noDelay: true });
    const pair = new Pair(client, upstream, this);
    this.pairs.add(pair);
    if (this.blackholed) this.tainted.add(pair);
    pair.onGone = () => {
      this.pairs.delete(pair);
      this.tainted.delete(pair);
    };
  }

  /** @internal state the pairs read per chunk */
  get state(): { latencyMs: number; blackholed: boolean } {
    return { latencyMs: this.latencyMs, blackholed: this.blackholed };
  }
}

/** Bytes queued towards one side before the other side is paused (latency must not buffer unbounded). */
const HIGH_WATER = 4 << 20;

class Pair {
  onGone?: () => void;
  private gone = false;

  readonly client: Socket;
  readonly upstream: Socket;
  private readonly proxy: FaultProxy;

  constructor(client: Socket, upstream: Socket, proxy: FaultProxy) {
    this.client = client;
    this.upstream = upstream;
    this.proxy = proxy;
    this.wire(client, upstream);
    this.wire(upstream, client);
  }

  private wire(from: Socket, to: Socket): void {
    let queued = 0;
    let lastDue = 0;
    from.on('data', (chunk: Buffer) => {
      const { latencyMs, blackholed } = this.proxy.state;
      if (blackholed) return; // swallowed
      if (latencyMs <= 0 && queued === 0) {
        if (!to.write(chunk)) {
          from.pause();
          to.once('drain', () => from.resume());
        }
        return;
      }
      // Constant delay per chunk, never reordering: due no earlier than the chunk before it.
      const due = Math.max(Date.now() + latencyMs, lastDue);
      lastDue = due;
      queued += chunk.length;
      if (queued > HIGH_WATER) from.pause();
      setTimeout(
        () => {
          queued -= chunk.length;
          if (this.proxy.state.blackholed || this.gone) return;
          to.write(chunk);
          if (queued <= HIGH_WATER && from.isPaused()) from.resume();
        },
        Math.max(0, due - Date.now()),
      );
    });
    from.on('end', () => {
      // A FIN in a blackhole never arrives; the heal resets the pair instead.
      if (!this.proxy.state.blackholed) to.end();
    });
    from.on('error', () => this.reset());
    from.on('close', () => {
      if (this.proxy.state.blackholed) return;
      this.reset();
    });
  }

  reset(): void {
    if (this.gone) return;
    this.gone = true;
    for (const s of [this.client, this.upstream]) {
      if (s.destroyed) continue;
      try {
        s.resetAndDestroy();
      } catch {
        s.destroy();
      }
    }
    this.onGone?.();
  }
}
