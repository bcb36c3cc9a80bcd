/**
 * The access-log hook: one entry per request once its answer is out, with what an operator reads in
 * an access log — who, what, which endpoint after how many tries, how long, how many bytes — for
 * answers relayed, answers the proxy gave itself, and clients that left.
 */
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { createCluster } from '../../src/cluster/Cluster.js';
import { type AccessLogEntry, createProxy, type ProxyOptions } from '../../src/proxy/createProxy.js';
import { within } from '../helpers/async.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { closedPort, hangingUpstream, startUpstream } from '../helpers/upstreams.js';

const defer = cleanupAfterEach();

async function logged(options: Omit<ProxyOptions, 'accessLog'>) {
  const entries: AccessLogEntry[] = [];
  const proxy = createProxy({ ...options, accessLog: (entry) => entries.push(entry) });
  const port = ((await proxy.listen(0)).address() as AddressInfo).port;
  defer(() => proxy.close({ timeoutMs: 100 }));
  return { base: `http://127.0.0.1:${port}`, entries };
}

describe('access log', () => {
  it('logs a relayed request with its endpoint, tries, duration and bytes both ways', async () => {
    const backend = await startUpstream((req, res) => {
      req.resume();
      req.on('end', () => res.end('hello, world'));
    });
    defer(() => backend.close());
    const { base, entries } = await logged({ cluster: { backends: [{ url: backend.url, id: 'one' }] } });
    const body = 'x'.repeat(100_000); // larger than the replay buffer: streamed, and counted on the way
    const response = await request(`${base}/upload?n=1`, {
      method: 'POST',
      body,
      headers: { 'user-agent': 'test-agent/1', 'x-request-id': 'req-1' },
    });
    expect(await response.body.text()).toBe('hello, world');
    await within(() => entries.length === 1, 5_000);
    const entry = entries[0] as AccessLogEntry;
    expect(entry).toMatchObject({
      requestId: 'req-1',
      client: '127.0.0.1',
      method: 'POST',
      path: '/upload?n=1',
      status: 200,
      cluster: 'default',
      endpoint: 'one',
      attempts: 1,
      bytesIn: 100_000,
      userAgent: 'test-agent/1',
      error: undefined,
    });
    expect(Date.parse(entry.time)).not.toBeNaN();
    expect(entry.durationMs).toBeGreaterThanOrEqual(0);
    // The head and the 12-byte body.
    expect(entry.bytesOut).toBeGreaterThan(12);
    expect(entry.bytesOut).toBeLessThan(400);
  });

  it('counts the tries of a request that failed over, and of one that failed everywhere', async () => {
    const good = await startUpstream((_req, res) => res.end('ok'));
    defer(() => good.close());
    const refused = `http://127.0.0.1:${await closedPort()}`;
    const cluster = createCluster({
      backends: [
        { url: refused, id: 'dead' },
        { url: good.url, id: 'good' },
      ],
      balancer: 'round-robin',
      outlierDetection: false,
    });
    defer(() => cluster.close({ timeoutMs: 100 }));
    const { base, entries } = await logged({ cluster });
    for (let i = 0; i < 2; i++) expect((await request(`${base}/`)).statusCode).toBe(200);
    await within(() => entries.length === 2, 5_000);
    // Round robin sends each request to the dead one first; its second try answers.
    expect(entries.map((e) => [e.endpoint, e.attempts])).toEqual([
      ['good', 2],
      ['good', 2],
    ]);

    const allDead = createCluster({ backends: [refused], outlierDetection: false });
    defer(() => allDead.close({ timeoutMs: 100 }));
    const dead = await logged({ cluster: allDead });
    expect((await request(`${dead.base}/`)).statusCode).toBe(502);
    await within(() => dead.entries.length === 1, 5_000);
    expect(dead.entries[0]).toMatchObject({
      status: 502,
      endpoint: undefined,
      attempts: 1,
      error: 'EUPSTREAM',
    });
  });

  it('logs answers the proxy gives itself, and a client that leaves before the answer', async () => {
    const hung = await hangingUpstream();
    defer(() => hung.close());
    const { base, entries } = await logged({
      routes: [{ match: { pathPrefix: '/slow' }, cluster: { backends: [hung.url] } }],
    });
    expect((await request(`${base}/nowhere`)).statusCode).toBe(404);
    await within(() => entries.length === 1, 5_000);
    expect(entries[0]).toMatchObject({ status: 404, cluster: undefined, attempts: 0, error: 'ENOUPSTREAM' });

    const controller = new AbortController();
    const pending = request(`${base}/slow`, { signal: controller.signal }).catch((e: unknown) => e);
    await within(() => hung.requests.length === 1, 5_000);
    controller.abort();
    await pending;
    await within(() => entries.length === 2, 5_000);
    expect(entries[1]).toMatchObject({ path: '/slow', status: 0, endpoint: undefined, error: 'EABORTED' });
  });

  it('keeps serving when the hook throws', async () => {
    const backend = await startUpstream((_req, res) => res.end('ok'));
    defer(() => backend.close());
    const proxy = createProxy({
      cluster: { backends: [backend.url] },
      accessLog: () => {
        throw new Error('disk full');
      },
    });
    const port = ((await proxy.listen(0)).address() as AddressInfo).port;
    defer(() => proxy.close({ timeoutMs: 100 }));
    for (let i = 0; i < 2; i++)
      expect(await (await request(`http://127.0.0.1:${port}/`)).body.text()).toBe('ok');
  });
});
