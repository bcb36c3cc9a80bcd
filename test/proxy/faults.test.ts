/**
 * Fault and load tests on loopback, bounded in requests and time, driven by events rather than
 * sleeps: a backend killed under load and brought back, and a thousand streams aborted by clients.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Agent, request } from 'undici';
import { describe, expect, it } from 'vitest';
import { type Cluster, createCluster } from '../../src/cluster/Cluster.js';
import { createProxy } from '../../src/proxy/createProxy.js';
import { within } from '../helpers/async.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';

const defer = cleanupAfterEach();

/** A backend that can be killed (every socket reset) and started again on the same port. */
async function killableBackend(name: string) {
  const sockets = new Set<Socket>();
  let server: http.Server | undefined;
  let port = 0;
  const start = async () => {
    server = http.createServer((req, res) => {
      if (req.url === '/health') return void res.end('ok');
      setTimeout(() => res.end(name), 2);
    });
    server.on('connection', (socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server?.listen(port, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  };
  const kill = async () => {
    const closing = new Promise<void>((resolve) => server?.close(() => resolve()));
    for (const socket of sockets) socket.resetAndDestroy();
    await closing;
  };
  await start();
  defer(() => kill());
  return { start, kill, url: () => `http://127.0.0.1:${port}` };
}

describe('proxy under faults', () => {
  it('loses no request when a backend dies under load, and takes it back, ramping up, when it returns', async () => {
    const backends = await Promise.all(['a', 'b', 'c'].map((name) => killableBackend(name)));
    const cluster: Cluster = createCluster({
      backends: backends.map((b, i) => ({ url: b.url(), id: 'abc'[i] as string })),
      health: { intervalMs: 100, timeoutMs: 200, healthyThreshold: 2, unhealthyThreshold: 2, jitter: 0 },
      outlierDetection: { consecutiveLocalOriginFailures: 3, baseEjectionMs: 300, maxEjectionPercent: 50 },
      circuitBreaker: { openMs: 300 },
      slowStartMs: 2000,
    });
    defer(() => cluster.close({ timeoutMs: 500 }));
    const events: string[] = [];
    let weightWhenUp: number | undefined;
    for (const name of ['endpoint:down', 'endpoint:ejected', 'endpoint:up'] as const) {
      cluster.on(name, ({ id }: { id: string }) => {
        events.push(`${name} ${id}`);
        if (name === 'endpoint:up' && id === 'c') {
          weightWhenUp = cluster.stats().endpoints.find((e) => e.id === 'c')?.effectiveWeight;
        }
      });
    }
    const proxy = createProxy({ cluster });
    const server = await proxy.listen(0);
    defer(() => proxy.close({ timeoutMs: 500 }));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    const agent = new Agent({ connections: 32 });
    defer(() => agent.close());

    const served = new Map<string, number>();
    let failures = 0;
    const failureDetails: string[] = [];
    let total = 0;
    let servedByCAfterReturn = 0;
    let phase: 'before' | 'dead' | 'back' = 'before';
    const deadline = Date.now() + 15_000; // a bound, not a wait: the phases below end it far sooner
    let stop = false;
    const worker = async () => {
      while (!stop && Date.now() < deadline) {
        try {
          const response = await request(url, { dispatcher: agent });
          const name = await response.body.text();
          if (response.statusCode !== 200) {
            failures++;
            failureDetails.push(`${response.statusCode} ${name}`);
          } else {
            served.set(name, (served.get(name) ?? 0) + 1);
            if (phase === 'back' && name === 'c') servedByCAfterReturn++;
          }
        } catch (error) {
          failures++;
          failureDetails.push(String(error));
        }
        total++;
      }
    };
    const load = Promise.all(Array.from({ length: 32 }, worker));

    await within(() => total >= 500, 10_000, '500 requests');
    phase = 'dead';
    await backends[2]?.kill();
    const killedAt = total;
    await within(
      () => events.includes('endpoint:down c') && total >= killedAt + 500,
      10_000,
      'c marked down',
    );
    await backends[2]?.start();
    phase = 'back';
    await within(() => servedByCAfterReturn >= 50, 10_000, 'c serving again');
    stop = true;
    await load;

    expect(failureDetails).toEqual([]);
    expect(failures).toBe(0);
    expect(total).toBeGreaterThan(1000);
    expect(events).toContain('endpoint:down c');
    expect(events.indexOf('endpoint:up c')).toBeGreaterThan(events.indexOf('endpoint:down c'));
    expect(weightWhenUp).toBeCloseTo(0.1, 5); // slow start: 10 % of its weight when it came back
    expect(cluster.stats().inflight).toBe(0);
  }, 30_000);

  it('leaks no socket or request after 1,000 streams aborted by their clients', async () => {
    const upstreamSockets = new Set<Socket>();
    let streamsOpen = 0;
    let streamsServed = 0;
    const streaming = http.createServer((_req, res) => {
      streamsOpen++;
      streamsServed++;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: hello\n\n');
      const timer = setInterval(() => res.write('data: tick\n\n'), 5);
      res.on('close', () => {
        clearInterval(timer);
        streamsOpen--;
      });
    });
    streaming.on('connection', (socket) => {
      upstreamSockets.add(socket);
      socket.on('close', () => upstreamSockets.delete(socket));
    });
    await new Promise<void>((resolve) => streaming.listen(0, '127.0.0.1', resolve));
    defer(
      () =>
        new Promise<void>((resolve) => {
          for (const socket of upstreamSockets) socket.destroy();
          streaming.close(() => resolve());
        }),
    );
    const upstreamUrl = `http://127.0.0.1:${(streaming.address() as AddressInfo).port}`;
    const proxy = createProxy({ cluster: { backends: [upstreamUrl], pool: { connections: 64 } } });
    const server = await proxy.listen(0);
    defer(() => proxy.close({ timeoutMs: 500 }));
    const port = (server.address() as AddressInfo).port;

    const openStream = () =>
      new Promise<void>((resolve, reject) => {
        const req = http.get({ port, host: '127.0.0.1', path: '/events', agent: false }, (res) => {
          res.once('data', () => {
            req.destroy(); // the client goes away mid-stream
            resolve();
          });
        });
        req.on('error', (error: NodeJS.ErrnoException) => {
          if (error.code === 'ECONNRESET' || req.destroyed) resolve();
          else reject(error);
        });
      });
    for (let batch = 0; batch < 50; batch++) await Promise.all(Array.from({ length: 20 }, openStream));

    await within(() => proxy.inflight === 0, 5_000, 'no request in flight');
    await within(() => streamsOpen === 0, 5_000, 'upstream streams closed'); // every one was torn down
    expect(streamsServed).toBeGreaterThan(900); // most reached the upstream before their client left
    // What stays open upstream is idle keep-alive connections in the pool, at most its size.
    expect(upstreamSockets.size).toBeLessThanOrEqual(64);
    const connections = await new Promise<number>((resolve, reject) =>
      server.getConnections((error, count) => (error ? reject(error) : resolve(count))),
    );
    expect(connections).toBe(0);
  }, 30_000);
});
