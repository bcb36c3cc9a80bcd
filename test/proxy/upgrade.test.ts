/**
 * WebSocket upgrades on the same path as requests: admission (closing, rate limit), forwarding
 * headers, counting on the endpoint, timeouts, requeues, and a close that ends tunnels at its deadline.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { renderPrometheus } from '../../src/admin/metrics.js';
import { type Cluster, createCluster } from '../../src/cluster/Cluster.js';
import { RateLimiter } from '../../src/limit/RateLimiter.js';
import { createProxy, type ProxyOptions } from '../../src/proxy/createProxy.js';
import { until, within } from '../helpers/async.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { ManualClock } from '../helpers/clock.js';
import { closedPort, hangingUpstream, startUpstream, type Upstream } from '../helpers/upstreams.js';

const defer = cleanupAfterEach({ ignoreErrors: true });

/** A WebSocket echo server; `upgrades` holds the headers of every upgrade request it accepted. */
async function wsBackend() {
  const server: Upstream = await startUpstream((_req, res) => res.end('no upgrade here'));
  const wss = new WebSocketServer({ noServer: true });
  const upgrades: http.IncomingHttpHeaders[] = [];
  server.server.on('upgrade', (req, socket, head) => {
    upgrades.push(req.headers);
    wss.handleUpgrade(req, socket, head, (client) => {
      client.on('message', (data) => client.send(`echo: ${data.toString()}`));
    });
  });
  defer(() => new Promise((resolve) => wss.close(resolve)));
  defer(() => server.close());
  return { ...server, wss, upgrades };
}

async function proxied(options: ProxyOptions) {
  const proxy = createProxy(options);
  const server = await proxy.listen(0);
  defer(() => proxy.close({ timeoutMs: 200 }));
  return { proxy, port: (server.address() as AddressInfo).port };
}

function cluster(backends: (string | { url: string; id: string })[]): Cluster {
  const c = createCluster({ backends, retry: false });
  defer(() => c.close({ timeoutMs: 200 }));
  return c;
}

/** Opens a WebSocket: resolves with it once open, or with the status of the answer that refused it. */
function open(port: number, path = '/chat'): Promise<WebSocket | { status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`ws://127.0.0.1:${port}${path}`);
    socket.on('open', () => resolve(socket));
    socket.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => {
        body += chunk.toString();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    socket.on('error', reject);
    defer(async () => socket.terminate());
  });
}

async function echoOver(socket: WebSocket, text: string): Promise<string> {
  return new Promise((resolve) => {
    socket.once('message', (data) => resolve(data.toString()));
    socket.send(text);
  });
}

describe('WebSocket upgrades', () => {
  it('proxies both ways with forwarding headers, counts the tunnel on its endpoint, and frees it when one side goes', async () => {
    const backend = await wsBackend();
    const c = cluster([{ url: backend.url, id: 'ws' }]);
    const { proxy, port } = await proxied({ cluster: c });
    const socket = await open(port);
    if (!(socket instanceof WebSocket)) throw new Error(`refused with ${socket.status}`);
    expect(await echoOver(socket, 'hello')).toBe('echo: hello');
    expect(backend.upgrades[0]?.['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(backend.upgrades[0]?.['x-forwarded-for']).toBe('127.0.0.1');
    expect(c.stats().endpoints[0]).toMatchObject({ tunnels: 1, inflight: 1 });
    expect(proxy.tunnels).toBe(1);
    const metrics = renderPrometheus({ clusters: { ws: c }, proxy });
    expect(metrics).toContain('mcgravity_endpoint_tunnels{cluster="ws",endpoint="ws"} 1');
    expect(metrics).toContain('mcgravity_proxy_tunnels 1');
    const closed = new Promise((resolve) => socket.on('close', resolve));
    for (const client of backend.wss.clients) client.terminate(); // the upstream side goes
    await closed;
    await until(() => c.stats().endpoints[0]?.tunnels === 0);
    expect(c.stats().endpoints[0]?.inflight).toBe(0);
    expect(proxy.tunnels).toBe(0);
  });

  it('ends open tunnels at the close deadline: close({ timeoutMs: 1000 }) with three open resolves in about a second', async () => {
    const backend = await wsBackend();
    const proxy = createProxy({ cluster: cluster([backend.url]) });
    const port = ((await proxy.listen(0)).address() as AddressInfo).port;
    const sockets = await Promise.all([open(port), open(port), open(port)]);
    expect(sockets.every((socket) => socket instanceof WebSocket)).toBe(true);
    await until(() => backend.wss.clients.size === 3);
    const started = Date.now();
    await proxy.close({ timeoutMs: 1000 });
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(900); // tunnels are given their time…
    expect(elapsed).toBeLessThan(2500); // …and cut at the deadline, not waited for
    await within(() => backend.wss.clients.size === 0, 2000, 'upstream sockets closed');
  });

  it('applies the rate limit: with a limit of 2, two of four upgrades open and the others get 429', async () => {
    const backend = await wsBackend();
    const limiter = new RateLimiter({ limit: 2, windowMs: '1m' });
    const { port } = await proxied({ cluster: cluster([backend.url]), rateLimit: { limiter } });
    const results = [];
    for (let i = 0; i < 4; i++) results.push(await open(port));
    expect(results.filter((r) => r instanceof WebSocket)).toHaveLength(2);
    const refused = results.filter((r): r is { status: number; body: string } => !(r instanceof WebSocket));
    expect(refused.map((r) => r.status)).toEqual([429, 429]);
    expect(JSON.parse(refused[0]?.body ?? '{}')).toMatchObject({ error: { code: 'ERATELIMITED' } });
    expect(backend.upgrades).toHaveLength(2);
  });

  it('answers an upgrade to a closing proxy with 503', async () => {
    const backend = await wsBackend();
    const proxy = createProxy({ cluster: cluster([backend.url]) });
    // The proxy's handlers on a server of the application's own (as with Express), which stays open.
    const server = http.createServer(proxy.handler);
    server.on('upgrade', proxy.upgrade);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    defer(() => new Promise<void>((resolve) => server.close(() => resolve())));
    await proxy.close({ timeoutMs: 100 });
    const refused = await open((server.address() as AddressInfo).port);
    expect(refused).toMatchObject({ status: 503 });
    expect(JSON.parse((refused as { body: string }).body)).toMatchObject({ error: { code: 'ECLOSED' } });
    expect(backend.upgrades).toHaveLength(0);
  });

  it('answers a hung upgrade with 504 at the first-byte timeout', async () => {
    const hung = await hangingUpstream();
    defer(() => hung.close());
    const { port } = await proxied({ cluster: cluster([hung.url]), timeouts: { firstByteMs: 300 } });
    const started = Date.now();
    const refused = await open(port);
    expect(refused).toMatchObject({ status: 504 });
    expect(JSON.parse((refused as { body: string }).body)).toMatchObject({
      error: { code: 'EUPSTREAMTIMEOUT' },
    });
    expect(Date.now() - started).toBeLessThan(5000); // a bound: it no longer waits for ever
  });

  it('tries a refused upgrade on another endpoint', async () => {
    const backend = await wsBackend();
    const dead = `http://127.0.0.1:${await closedPort()}`;
    const c = createCluster({
      backends: [
        { url: dead, id: 'dead' },
        { url: backend.url, id: 'live' },
      ],
      balancer: 'round-robin',
      outlierDetection: false,
    });
    defer(() => c.close({ timeoutMs: 200 }));
    const { port } = await proxied({ cluster: c });
    for (let i = 0; i < 4; i++) expect(await open(port)).toBeInstanceOf(WebSocket);
  });

  it('closes a tunnel silent for tunnelIdleMs, and leaves a busy one open', async () => {
    const clock = new ManualClock();
    const backend = await wsBackend();
    const { port } = await proxied({
      cluster: cluster([backend.url]),
      timeouts: { tunnelIdleMs: 10_000 },
      clock,
    });
    const quiet = (await open(port)) as WebSocket;
    const busy = (await open(port)) as WebSocket;
    const quietClosed = new Promise((resolve) => quiet.on('close', resolve));
    for (let second = 0; second < 15; second++) {
      await echoOver(busy, `tick ${second}`);
      clock.advance(1000);
    }
    await quietClosed;
    expect(busy.readyState).toBe(WebSocket.OPEN);
  });
});
