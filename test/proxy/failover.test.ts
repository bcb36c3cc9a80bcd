/**
 * Failover with default options, as it really happens: backends stopped under 32-way load while
 * requests are in flight, by RST (every socket reset) and by FIN (`server.close()` and
 * `closeAllConnections()`), through `createProxy({ cluster: createCluster({ backends }) })`. Bounded in
 * requests and time; the phases advance on counts, not sleeps.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Agent, request } from 'undici';
import { describe, expect, it } from 'vitest';
import { createCluster } from '../../src/cluster/Cluster.js';
import { createProxy } from '../../src/proxy/createProxy.js';
import { within } from '../helpers/async.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';

const defer = cleanupAfterEach({ ignoreErrors: true });

type Stop = 'rst' | 'fin';

/** A backend answering its name after 2 ms, which can be stopped by RST or by FIN. */
async function backend(name: string) {
  const sockets = new Set<Socket>();
  const server = http.createServer((_req, res) => {
    setTimeout(() => res.end(name), 2);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const stop = async (how: Stop) => {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    if (how === 'rst') for (const socket of sockets) socket.resetAndDestroy();
    else server.closeAllConnections();
    await closed;
  };
  defer(() => stop('rst'));
  return { url, stop };
}

/** 32 clients sending GETs through the proxy until told to stop; counts what each got. */
function load(url: string) {
  const agent = new Agent({ connections: 32 });
  defer(() => agent.close());
  const failures: string[] = [];
  let total = 0;
  let stop = false;
  const deadline = Date.now() + 20_000; // a bound: the test's phases end it far sooner
  const worker = async () => {
    while (!stop && Date.now() < deadline) {
      try {
        const response = await request(url, { dispatcher: agent });
        const text = await response.body.text();
        if (response.statusCode !== 200) failures.push(`${response.statusCode} ${text}`);
      } catch (error) {
        failures.push(String(error));
      }
      total++;
    }
  };
  const running = Promise.all(Array.from({ length: 32 }, worker));
  return {
    failures,
    get total() {
      return total;
    },
    async end() {
      stop = true;
      await running;
    },
  };
}

async function proxied(balancer: 'round-robin' | undefined) {
  const backends = await Promise.all(['a', 'b', 'c'].map((name) => backend(name)));
  const cluster = createCluster({
    backends: backends.map((b) => b.url),
    ...(balancer === undefined ? {} : { balancer }),
  });
  defer(() => cluster.close({ timeoutMs: 500 }));
  const proxy = createProxy({ cluster });
  const server = await proxy.listen(0);
  defer(() => proxy.close({ timeoutMs: 500 }));
  return { backends, cluster, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/` };
}

describe.each([
  ['round-robin', 'round-robin' as const],
  ['the default balancer', undefined],
])('failover with default options (%s)', (_name, balancer) => {
  it.each(['rst', 'fin'] as const)(
    'loses no GET when a backend is stopped by %s under 32-way load',
    async (how) => {
      const { backends, cluster, url } = await proxied(balancer);
      const traffic = load(url);
      await within(() => traffic.total >= 1_000, 10_000, '1,000 requests before');
      await backends[2]?.stop(how);
      const stoppedAt = traffic.total;
      await within(() => traffic.total >= stoppedAt + 3_000, 15_000, '3,000 requests after');
      await traffic.end();
      expect(traffic.failures).toEqual([]);
      expect(cluster.stats().inflight).toBe(0);
    },
    30_000,
  );

  it('loses no GET when two of three backends stop one after the other', async () => {
    const { backends, url } = await proxied(balancer);
    const traffic = load(url);
    await within(() => traffic.total >= 1_000, 10_000, '1,000 requests before');
    await backends[1]?.stop('fin');
    const first = traffic.total;
    await within(() => traffic.total >= first + 2_000, 15_000, '2,000 requests after the first');
    await backends[2]?.stop('rst');
    const second = traffic.total;
    await within(() => traffic.total >= second + 2_000, 15_000, '2,000 requests after the second');
    await traffic.end();
    expect(traffic.failures).toEqual([]);
  }, 40_000);
});
