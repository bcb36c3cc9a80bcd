/**
 * Discovery as it runs in production: a proxy whose cluster follows a DNS name (A and SRV records
 * served by a DNS server on loopback whose answers change) or a watched file, under 32-way load.
 * Endpoints join and leave within one TTL with no failed GET; a DNS server that stops answering
 * leaves the last good set in place, and an event and the metrics say so.
 */
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderPrometheus } from '../../src/admin/metrics.js';
import { type Cluster, type ClusterEvents, createCluster } from '../../src/cluster/Cluster.js';
import type { Discovery } from '../../src/discovery/Discovery.js';
import { dnsDiscovery } from '../../src/discovery/dnsDiscovery.js';
import { fileDiscovery } from '../../src/discovery/fileDiscovery.js';
import { createProxy } from '../../src/proxy/createProxy.js';
import { within } from '../helpers/async.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { startDnsServer } from '../helpers/dnsServer.js';
import { loadGets } from '../helpers/load.js';

const defer = cleanupAfterEach({ ignoreErrors: true });
const TTL_SECONDS = 1;

/** A backend answering its name after 1 ms, on `host` and `port` (0: any). */
async function backend(name: string, host: string, port = 0) {
  const server = http.createServer((_req, res) => {
    setTimeout(() => res.end(name), 1);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  defer(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  return { name, port: (server.address() as AddressInfo).port };
}

async function proxiedCluster(discovery: Discovery) {
  const cluster = createCluster({ name: 'found', discovery, balancer: 'round-robin' });
  defer(() => cluster.close({ timeoutMs: 500 }));
  const proxy = createProxy({ cluster });
  const server = await proxy.listen(0, '127.0.0.1');
  defer(() => proxy.close({ timeoutMs: 500 }));
  const events: { event: keyof ClusterEvents; info: unknown }[] = [];
  for (const event of ['discovery:update', 'discovery:error'] as const) {
    cluster.on(event, (info: unknown) => events.push({ event, info }));
  }
  await cluster.ready();
  const traffic = loadGets(() => `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, defer);
  return { cluster, traffic, events };
}

const ids = (cluster: Cluster) =>
  cluster.endpoints
    .map((endpoint) => endpoint.id)
    .sort()
    .join(' ');

/** Waits until `condition` holds, at most one TTL after the change plus the time of a look-up. */
const withinOneTtl = (condition: () => boolean, what: string) =>
  within(condition, TTL_SECONDS * 1000 + 500, what);

describe('discovery under 32-way load', () => {
  it('follows A records: addresses join and leave within one TTL, and a silent DNS server changes nothing', async () => {
    // Three backends on one port, at three loopback addresses, as pods behind a headless service.
    const first = await backend('a', '127.0.0.2');
    const [b, c] = [await backend('b', '127.0.0.3', first.port), await backend('c', '127.0.0.4', first.port)];
    const dns = await startDnsServer({ 'api.test': { A: ['127.0.0.2', '127.0.0.3'] } }, { ttl: TTL_SECONDS });
    defer(() => dns.close());
    const { cluster, traffic, events } = await proxiedCluster(
      dnsDiscovery({
        name: 'api.test',
        port: first.port,
        servers: [dns.address],
        minTtlMs: 100,
        timeoutMs: 100,
        tries: 1,
      }),
    );
    await within(
      () => (traffic.answers.get('a') ?? 0) > 20 && (traffic.answers.get(b.name) ?? 0) > 20,
      5000,
      'traffic',
    );

    dns.zone.set('api.test', { A: ['127.0.0.2', '127.0.0.3', '127.0.0.4'] });
    await withinOneTtl(() => cluster.endpoints.length === 3, 'c joins');
    await within(() => (traffic.answers.get(c.name) ?? 0) > 20, 5000, 'traffic to c');

    dns.zone.set('api.test', { A: ['127.0.0.3', '127.0.0.4'] });
    await withinOneTtl(() => !ids(cluster).includes('127.0.0.2'), 'a leaves');
    const servedByA = traffic.answers.get('a');
    await within(() => traffic.sent() > 400 + (traffic.answers.get(c.name) ?? 0), 5000, 'more traffic');
    expect(traffic.answers.get('a')).toBe(servedByA); // gone: it takes no more

    dns.pause();
    await within(() => events.some(({ event }) => event === 'discovery:error'), 3000, 'an error event');
    const error = events.find(({ event }) => event === 'discovery:error')?.info as {
      error: Error;
      kept: number;
    };
    expect(error.error.message).toBe('dns A api.test: ETIMEOUT');
    expect(error.kept).toBe(2);
    expect(ids(cluster)).toBe(`127.0.0.3:${first.port} 127.0.0.4:${first.port}`);
    const metrics = renderPrometheus({ clusters: { found: cluster } });
    expect(metrics).toContain('mcgravity_discovery_stale{cluster="found",source="dns A api.test"} 1');
    expect(metrics).toMatch(/mcgravity_discovery_updates_total\{cluster="found",source="dns A api.test"\} 3/);

    await traffic.stop();
    expect(traffic.failures).toEqual([]);
    expect(traffic.sent()).toBeGreaterThan(500);
  });

  it('follows SRV records: targets and ports join and leave within one TTL with no failed GET', async () => {
    const [a, b, c] = [
      await backend('a', '127.0.0.1'),
      await backend('b', '127.0.0.1'),
      await backend('c', '127.0.0.1'),
    ];
    const srv = (...ports: number[]) =>
      ports.map((port) => ({ priority: 0, weight: 10, port, target: 'node.api.test' }));
    const dns = await startDnsServer(
      {
        '_http._tcp.api.test': { SRV: srv(a.port, b.port) },
        'node.api.test': { A: ['127.0.0.1'] },
      },
      { ttl: TTL_SECONDS },
    );
    defer(() => dns.close());
    const { cluster, traffic } = await proxiedCluster(
      dnsDiscovery({ name: '_http._tcp.api.test', type: 'SRV', servers: [dns.address], minTtlMs: 100 }),
    );
    expect(cluster.endpoints.map((e) => e.weight)).toEqual([10, 10]);
    dns.zone.set('_http._tcp.api.test', { SRV: srv(b.port, c.port) });
    await withinOneTtl(
      () =>
        ids(cluster) ===
        [b.port, c.port]
          .map((p) => `127.0.0.1:${p}`)
          .sort()
          .join(' '),
      'a swapped for c',
    );
    await within(() => (traffic.answers.get('c') ?? 0) > 20, 5000, 'traffic to c');
    await traffic.stop();
    expect(traffic.failures).toEqual([]);
  });

  it('follows a watched file: a replaced file moves the membership with no failed GET, a broken one changes nothing', async () => {
    const [a, b] = [await backend('a', '127.0.0.1'), await backend('b', '127.0.0.1')];
    const folder = await mkdtemp(path.join(tmpdir(), 'mcgravity-found-'));
    defer(() => rm(folder, { recursive: true, force: true }));
    const file = path.join(folder, 'api.json');
    const write = async (text: string) => {
      await writeFile(`${file}.tmp`, text);
      await rename(`${file}.tmp`, file);
    };
    await write(JSON.stringify([`http://127.0.0.1:${a.port}`]));
    const { cluster, traffic, events } = await proxiedCluster(fileDiscovery({ path: file }));
    await within(() => (traffic.answers.get('a') ?? 0) > 20, 5000, 'traffic to a');

    await write(JSON.stringify({ backends: [`http://127.0.0.1:${b.port}`] }));
    await within(() => ids(cluster) === `127.0.0.1:${b.port}`, 2000, 'b replaces a');
    await within(() => (traffic.answers.get('b') ?? 0) > 20, 5000, 'traffic to b');

    await write('[ "http://127.0.0.1:1", ');
    await within(() => events.some(({ event }) => event === 'discovery:error'), 2000, 'an error event');
    expect(ids(cluster)).toBe(`127.0.0.1:${b.port}`);
    await traffic.stop();
    expect(traffic.failures).toEqual([]);
  });
});
