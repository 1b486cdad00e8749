import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { FaultProxy } from '../../soak/proxy.ts';

/** The soak's fault proxy in front of a real TCP echo server on loopback. */

let echo: Server;
let echoPort = 0;
const serverSide = new Set<Socket>();
beforeAll(async () => {
  echo = createServer((s) => {
    serverSide.add(s);
    s.on('close', () => serverSide.delete(s));
    s.on('error', () => undefined);
    s.pipe(s);
  });
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
  echoPort = (echo.address() as { port: number }).port;
});
afterAll(async () => {
  for (const s of serverSide) s.destroy();
  await new Promise((r) => echo.close(r));
});

function client(port: number): Promise<{ s: Socket; got: () => string; closed: () => string | undefined }> {
  return new Promise((resolve, reject) => {
    let got = '';
    let closed: string | undefined;
    const s = connect({ host: '127.0.0.1', port }, () =>
      resolve({ s, got: () => got, closed: () => closed }),
    );
    s.on('data', (d: Buffer) => (got += d.toString()));
    s.on('error', (err: NodeJS.ErrnoException) => (closed = err.code ?? err.message));
    s.on('close', () => (closed ??= 'closed'));
    s.once('error', reject);
  });
}

const until = async (what: () => boolean, ms = 3000) => {
  const end = Date.now() + ms;
  while (!what() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
};

describe('FaultProxy', () => {
  it('passes bytes both ways, knows its upstream ports, adds latency in order', async () => {
    const proxy = await new FaultProxy('echo', { host: '127.0.0.1', port: echoPort }).start();
    const c = await client(proxy.port);
    c.s.write('hello');
    await until(() => c.got() === 'hello');
    expect(c.got()).toBe('hello');
    expect(proxy.connections()).toBe(1);
    expect(proxy.upstreamPorts().size).toBe(1);
    const serverPorts = [...serverSide].map((s) => s.remotePort);
    expect(serverPorts).toContain([...proxy.upstreamPorts()][0]);

    proxy.setLatency(150);
    const t = Date.now();
    for (const x of ['a', 'b', 'c']) c.s.write(x);
    await until(() => c.got() === 'helloabc');
    expect(c.got()).toBe('helloabc');
    expect(Date.now() - t).toBeGreaterThanOrEqual(150);
    c.s.destroy();
    await proxy.stop();
  });

  it('blackholes: connections stay up, bytes vanish; healing resets them', async () => {
    const proxy = await new FaultProxy('echo', { host: '127.0.0.1', port: echoPort }).start();
    const c = await client(proxy.port);
    proxy.blackhole();
    c.s.write('lost');
    const late = await client(proxy.port); // accepted while blackholed
    late.s.write('also lost');
    await new Promise((r) => setTimeout(r, 300));
    expect(c.got()).toBe('');
    expect(late.got()).toBe('');
    expect(c.closed()).toBeUndefined();
    proxy.heal();
    await until(() => c.closed() !== undefined && late.closed() !== undefined);
    expect(c.closed()).toBe('ECONNRESET');
    expect(late.closed()).toBe('ECONNRESET');
    // new connections after the heal work
    const fresh = await client(proxy.port);
    fresh.s.write('back');
    await until(() => fresh.got() === 'back');
    expect(fresh.got()).toBe('back');
    fresh.s.destroy();
    await proxy.stop();
  });

  it('resets every connection with RST', async () => {
    const proxy = await new FaultProxy('echo', { host: '127.0.0.1', port: echoPort }).start();
    const a = await client(proxy.port);
    const b = await client(proxy.port);
    await until(() => proxy.connections() === 2);
    proxy.reset();
    await until(() => a.closed() !== undefined && b.closed() !== undefined);
    expect([a.closed(), b.closed()]).toEqual(['ECONNRESET', 'ECONNRESET']);
    expect(proxy.connections()).toBe(0);
    await proxy.stop();
  });
});
