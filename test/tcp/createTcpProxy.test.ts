/**
 * The TCP proxy against real servers on loopback: Redis behind it with a real client, a backend that
 * parses the PROXY protocol with an independent parser, 1,000 connections that must leave no handle,
 * and 100 MB through a client that reads slowly, which must not grow the proxy's memory.
 */
import net, { type AddressInfo, type Socket } from 'node:net';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Redis } from 'ioredis';
import { IPv4ProxyAddress, V1ProxyProtocol, V2ProxyProtocol } from 'proxy-protocol-js';
import { describe, expect, it } from 'vitest';
import { renderPrometheus } from '../../src/admin/metrics.js';
import { createCluster } from '../../src/cluster/Cluster.js';
import { createTcpProxy, type TcpProxy, type TcpProxyOptions } from '../../src/tcp/createTcpProxy.js';
import { within } from '../helpers/async.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { redisSkipReason, startRedis } from '../helpers/redis.js';
import { closedPort } from '../helpers/upstreams.js';

const defer = cleanupAfterEach({ ignoreErrors: true });

/** A TCP server on 127.0.0.1 running `onConnection`; its sockets are destroyed with the test. */
async function tcpServer(onConnection: (socket: Socket) => void, allowHalfOpen = false) {
  const sockets = new Set<Socket>();
  const server = net.createServer({ allowHalfOpen }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    onConnection(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const stop = async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  };
  defer(stop);
  return { port, url: `tcp://127.0.0.1:${port}`, sockets, stop };
}

/** A backend that writes `name` first, then echoes what it is sent. */
const echo = (name: string) =>
  tcpServer((socket) => {
    socket.write(`${name}\n`);
    socket.pipe(socket);
  });

async function tcpProxy(options: TcpProxyOptions): Promise<{ proxy: TcpProxy; port: number }> {
  const proxy = createTcpProxy(options);
  const server = await proxy.listen(0);
  defer(() => proxy.close({ timeoutMs: 200 }));
  return { proxy, port: (server.address() as AddressInfo).port };
}

/** Connects to `port`, sends `text`, half-closes, and resolves with everything it got back. */
function exchange(port: number, text = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk) => {
      received += chunk;
    });
    socket.on('error', reject);
    socket.on('end', () => {
      socket.end();
      resolve(received);
    });
    socket.end(text);
  });
}

describe('createTcpProxy', () => {
  const redisSkip = redisSkipReason();
  it.skipIf(redisSkip !== undefined)(
    `relays Redis commands from a real client across two servers, skipping a stopped one at connect${redisSkip === undefined ? '' : ` (${redisSkip})`}`,
    async () => {
      const [first, second] = [await startRedis(), await startRedis()];
      defer(() => first.stop());
      defer(() => second.stop());
      const cluster = createCluster({
        name: 'redis',
        backends: [`tcp://127.0.0.1:${first.port}`, `tcp://127.0.0.1:${second.port}`],
        balancer: 'round-robin',
        retry: false,
      });
      defer(() => cluster.close());
      const { proxy, port } = await tcpProxy({ cluster });

      const clients = Array.from(
        { length: 4 },
        () => new Redis({ port, host: '127.0.0.1', lazyConnect: true }),
      );
      for (const client of clients) defer(async () => client.disconnect());
      for (const [i, client] of clients.entries()) {
        await client.connect();
        expect(await client.set(`key-${i}`, `value-${i}`)).toBe('OK');
        expect(await client.get(`key-${i}`)).toBe(`value-${i}`);
      }
      // Round robin: two connections on each server, so each holds the keys of its two clients.
      const direct = [new Redis(first.port, '127.0.0.1'), new Redis(second.port, '127.0.0.1')];
      for (const client of direct) defer(async () => client.disconnect());
      expect((await direct[0]?.keys('key-*'))?.sort()).toEqual(['key-0', 'key-2']);
      expect((await direct[1]?.keys('key-*'))?.sort()).toEqual(['key-1', 'key-3']);
      expect(cluster.stats().endpoints.map((e) => e.tunnels)).toEqual([2, 2]);

      await first.stop();
      for (let i = 0; i < 4; i++) {
        const client = new Redis({ port, host: '127.0.0.1', retryStrategy: () => null });
        defer(async () => client.disconnect());
        expect(await client.ping()).toBe('PONG');
      }
      expect(proxy.stats()).toMatchObject({ failed: 0, refused: 0 });
      expect(cluster.stats().endpoints[0]?.errors).toBeGreaterThan(0); // refused connects counted against it
    },
  );

  it.each(['v1', 'v2'] as const)(
    'sends the client address in a PROXY protocol %s header',
    async (version) => {
      const parsed: { source: string; port: number; rest: string }[] = [];
      const backend = await tcpServer((socket) => {
        let data = Buffer.alloc(0);
        socket.on('data', (chunk: Buffer) => {
          data = Buffer.concat([data, chunk]);
        });
        socket.on('end', () => {
          if (version === 'v1') {
            const header = V1ProxyProtocol.parse(data.toString('latin1'));
            parsed.push({
              source: header.source.ipAddress,
              port: header.source.port,
              rest: header.data ?? '',
            });
          } else {
            const header = V2ProxyProtocol.parse(data);
            const address = header.proxyAddress;
            if (!(address instanceof IPv4ProxyAddress)) throw new Error('expected an IPv4 address');
            parsed.push({
              source: address.sourceAddress.address.join('.'),
              port: address.sourcePort,
              rest: Buffer.from(header.data ?? []).toString(),
            });
          }
          socket.end('ok');
        });
      }, true);
      const { port } = await tcpProxy({ cluster: { backends: [backend.url] }, proxyProtocol: version });
      const client = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
      await new Promise((resolve) => client.once('connect', resolve));
      const clientPort = client.localPort;
      client.end('hello');
      let answer = '';
      client.setEncoding('utf8').on('data', (chunk) => {
        answer += chunk;
      });
      await new Promise((resolve) => client.once('end', resolve));
      client.destroy();
      expect(answer).toBe('ok');
      expect(parsed).toEqual([{ source: '127.0.0.1', port: clientPort, rest: 'hello' }]);
    },
  );

  it('tries another backend when one refuses, and closes the client when none is left', async () => {
    const up = await echo('up');
    const refused = `tcp://127.0.0.1:${await closedPort()}`;
    const { proxy, port } = await tcpProxy({
      cluster: { backends: [refused, up.url], balancer: 'round-robin', outlierDetection: false },
    });
    const answers = await Promise.all(Array.from({ length: 6 }, () => exchange(port, 'x')));
    expect(answers).toEqual(Array(6).fill('up\nx'));

    const { proxy: dead, port: deadPort } = await tcpProxy({
      cluster: { backends: [refused] },
      connectAttempts: 2,
    });
    expect(await exchange(deadPort, 'x')).toBe('');
    expect(dead.stats()).toMatchObject({ failed: 1, open: 0 });
    expect(proxy.stats()).toMatchObject({ accepted: 6, failed: 0 });
  });

  it('passes a half-close on: the backend answers after the client has finished sending', async () => {
    const backend = await tcpServer((socket) => {
      let received = '';
      socket.setEncoding('utf8').on('data', (chunk) => {
        received += chunk;
      });
      socket.on('end', () => socket.end(`got ${received.length} bytes`));
    }, true);
    const { proxy, port } = await tcpProxy({ cluster: { backends: [backend.url] } });
    expect(await exchange(port, 'a'.repeat(100_000))).toBe('got 100000 bytes');
    await within(() => proxy.stats().open === 0, 2000, 'closed');
    expect(proxy.stats()).toMatchObject({ bytesReceived: 100_000, bytesSent: 16 });
    const metrics = renderPrometheus({ clusters: {}, tcpProxies: { store: proxy } });
    expect(metrics).toContain('mcgravity_tcp_received_bytes_total{listener="store"} 100000');
    expect(metrics).toContain('mcgravity_tcp_sent_bytes_total{listener="store"} 16');
    expect(metrics).toContain('mcgravity_tcp_connections_total{listener="store"} 1');
  });

  it('bounds connections per backend and in total', async () => {
    const [a, b] = [await echo('a'), await echo('b')];
    const cluster = createCluster({
      backends: [{ url: a.url, maxConnections: 1 }, b.url],
      balancer: 'round-robin',
    });
    defer(() => cluster.close());
    const { proxy, port } = await tcpProxy({ cluster, maxConnections: 3 });
    const open: Socket[] = [];
    const greetings: string[] = [];
    for (let i = 0; i < 3; i++) {
      const socket = net.connect({ port, host: '127.0.0.1' });
      defer(async () => socket.destroy());
      open.push(socket);
      greetings.push(
        await new Promise<string>((resolve) => socket.once('data', (chunk) => resolve(String(chunk)))),
      );
    }
    expect(greetings.sort()).toEqual(['a\n', 'b\n', 'b\n']); // a holds one at most
    expect(await exchange(port, 'x')).toBe(''); // the fourth is refused
    expect(proxy.stats()).toMatchObject({ open: 3, refused: 1 });
  });

  it('closes a connection idle for idleTimeoutMs', async () => {
    const backend = await tcpServer(() => {});
    const { proxy, port } = await tcpProxy({ cluster: { backends: [backend.url] }, idleTimeoutMs: 50 });
    const socket = net.connect({ port, host: '127.0.0.1' });
    await new Promise((resolve) => socket.once('close', resolve));
    await within(() => proxy.stats().open === 0, 2000, 'the proxy side closed');
    expect(proxy.stats().idleClosed).toBe(1);
    await within(() => backend.sockets.size === 0, 2000, 'the backend side closed');
  });

  it('leaves no handle after 1,000 connections opened and closed', async () => {
    const backend = await echo('e');
    const cluster = createCluster({ backends: [backend.url] });
    defer(() => cluster.close());
    const { proxy, port } = await tcpProxy({ cluster });
    const sockets = () => process.getActiveResourcesInfo().filter((kind) => kind === 'TCPSocketWrap').length;
    const before = sockets();
    for (let batch = 0; batch < 20; batch++) {
      const answers = await Promise.all(
        Array.from({ length: 50 }, (_, i) => exchange(port, `${batch}-${i}`)),
      );
      expect(answers[49]).toBe(`e\n${batch}-49`);
    }
    await within(
      () => proxy.stats().open === 0 && backend.sockets.size === 0,
      5000,
      'every connection closed',
    );
    await within(() => sockets() <= before, 5000, 'every socket handle released');
    expect(proxy.stats()).toMatchObject({ accepted: 1000, failed: 0, open: 0 });
    expect(cluster.stats().endpoints[0]).toMatchObject({ inflight: 0, tunnels: 0, requests: 1000 });
  });

  it('keeps its memory flat while 100 MB flow to a client that reads slowly', async () => {
    const total = 100 * 1024 * 1024;
    const chunk = Buffer.alloc(64 * 1024, 'x');
    const backend = await tcpServer((socket) => {
      let sent = 0;
      const source = new Readable({
        read() {
          sent += chunk.length;
          this.push(sent <= total ? chunk : null);
        },
      });
      void pipeline(source, socket).catch(() => {});
    });
    const { port } = await tcpProxy({ cluster: { backends: [backend.url] } });
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    let received = 0;
    const client = net.connect({ port, host: '127.0.0.1' });
    // The slow reader: each 64 KiB read waits for a timer tick before the next.
    const slow = new Writable({
      highWaterMark: 16 * 1024,
      write(data: Buffer, _encoding, done) {
        received += data.length;
        peak = Math.max(peak, process.memoryUsage().rss);
        setTimeout(done, received % (1024 * 1024) < data.length ? 1 : 0);
      },
    });
    await pipeline(client, slow);
    expect(received).toBe(total);
    // Without backpressure the proxy would hold most of the 100 MB; with it, a few socket buffers.
    expect(peak - baseline).toBeLessThan(40 * 1024 * 1024);
  });

  it('refuses bad options, naming them', () => {
    expect(() =>
      createTcpProxy({ cluster: { backends: ['tcp://127.0.0.1:1'] }, proxyProtocol: 'v3' as never }),
    ).toThrow(/proxyProtocol must be 'v1', 'v2' or false/);
    expect(() => createTcpProxy({ cluster: { backends: ['tcp://127.0.0.1'] } })).toThrow(
      /a tcp: URL needs a host and a port/,
    );
    expect(() => createTcpProxy({ cluster: 'redis' as never })).toThrow(
      /cluster must be a Cluster or cluster options/,
    );
    expect(() =>
      createTcpProxy({ cluster: { backends: ['tcp://127.0.0.1:1'] }, idleMs: 5 } as never),
    ).toThrow(/idleMs/);
  });
});
