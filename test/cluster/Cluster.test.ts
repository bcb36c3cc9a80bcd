import { describe, expect, it } from 'vitest';
import { type Cluster, type ClusterOptions, createCluster } from '../../src/cluster/Cluster.js';
import { isMcgravityError } from '../../src/core/errors.js';
import { until } from '../helpers/async.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { ManualClock } from '../helpers/clock.js';
import { closedPort, resettingUpstream, startUpstream, type Upstream } from '../helpers/upstreams.js';

const defer = cleanupAfterEach();

async function named(name: string, handler?: Parameters<typeof startUpstream>[0]): Promise<Upstream> {
  const server = await startUpstream(handler ?? ((_req, res) => res.end(name)));
  defer(() => server.close());
  return server;
}

function cluster(options: ClusterOptions): Cluster {
  const c = createCluster(options);
  defer(() => c.close({ timeoutMs: 1000 }));
  return c;
}

async function served(c: Cluster, count: number, path = '/'): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (let i = 0; i < count; i++) {
    const response = await c.request({ path });
    const name = await response.body.text();
    counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  return counts;
}

describe('Cluster', () => {
  it('balances real requests across its backends, with request(), fetch() and execute()', async () => {
    const [a, b, c] = await Promise.all([named('a'), named('b'), named('c')]);
    const pool = cluster({
      backends: [a.url, { url: b.url, id: 'b' }, { url: c.url, weight: 2 }],
      balancer: 'weighted-round-robin',
    });
    expect(Object.fromEntries(await served(pool, 40))).toEqual({ a: 10, b: 10, c: 20 });
    const response = await pool.fetch('/things?x=1');
    expect(response.status).toBe(200);
    expect(['a', 'b', 'c']).toContain(await response.text());
    expect(a.requests.concat(b.requests, c.requests).some((r) => r.url === '/things?x=1')).toBe(true);
    const viaExecute = await pool.execute(async (endpoint) => endpoint.id);
    expect([pool.endpoints.map((e) => e.id)].flat()).toContain(viaExecute);
    expect(pool.stats()).toMatchObject({ requests: 42, errors: 0, inflight: 0, eligible: 3, panic: false });
  });

  it('requeues a request elsewhere when a backend refuses connections, and ejects it', async () => {
    const [a, b] = await Promise.all([named('a'), named('b')]);
    const dead = `http://127.0.0.1:${await closedPort()}`;
    const pool = cluster({
      backends: [a.url, b.url, { url: dead, id: 'dead' }],
      balancer: 'round-robin',
      outlierDetection: { consecutiveLocalOriginFailures: 2, maxEjectionPercent: 50 },
    });
    const ejected: string[] = [];
    pool.on('endpoint:ejected', ({ id, reason }) => ejected.push(`${id} ${reason}`));
    const counts = await served(pool, 30);
    expect((counts.get('a') ?? 0) + (counts.get('b') ?? 0)).toBe(30); // no client saw the failure
    expect(ejected).toEqual(['dead consecutive-local-failures']);
    const stats = pool.stats();
    expect(stats.endpoints.find((e) => e.id === 'dead')).toMatchObject({
      ejected: true,
      eligible: false,
      errors: 2,
    });
    expect(stats).toMatchObject({ requeues: 2, retries: 0 }); // never reached a backend: not a retry
  });

  it('does not retry a POST that reached a backend, but does one that never connected', async () => {
    const reset = await resettingUpstream();
    defer(() => reset.close());
    const pool = cluster({ backends: [reset.url], retry: { attempts: 3 }, outlierDetection: false });
    const error = await pool
      .request({ method: 'POST', path: '/orders', body: '{}' })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: expect.stringMatching(/UND_ERR_SOCKET|ECONNRESET/) });
    expect(reset.requests).toHaveLength(1);
    const [a] = await Promise.all([named('a')]);
    const dead = `http://127.0.0.1:${await closedPort()}`;
    const mixed = cluster({ backends: [{ url: dead, id: 'dead' }, a.url], balancer: 'round-robin' });
    const posted = await mixed.request({ method: 'POST', path: '/orders', body: '{}' });
    expect(await posted.body.text()).toBe('a'); // connect refused: safe to send elsewhere
  });

  it('answers ENOUPSTREAM (503) when no endpoint is eligible', async () => {
    const a = await named('a');
    const pool = cluster({ backends: [{ url: a.url, id: 'a' }] });
    await pool.drain('a');
    const error = await pool.request({ path: '/' }).catch((e: unknown) => e);
    expect(isMcgravityError(error, 'ENOUPSTREAM')).toBe(true);
    expect((error as { statusCode: number }).statusCode).toBe(503);
  });

  it('enters panic mode below panicThreshold and balances across all endpoints', async () => {
    const clock = new ManualClock();
    const up = new Set(['a', 'b', 'c', 'd']);
    const servers = await Promise.all(['a', 'b', 'c', 'd'].map((name) => named(name)));
    const pool = cluster({
      backends: servers.map((s, i) => ({ url: s.url, id: 'abcd'[i] as string })),
      balancer: 'round-robin',
      health: { intervalMs: 1000, unhealthyThreshold: 1, jitter: 0, check: async (e) => up.has(e.id) },
      clock,
    });
    const panics: boolean[] = [];
    pool.on('panic', ({ active }) => panics.push(active));
    up.delete('a');
    await clock.advanceAsync(1000);
    expect(pool.stats()).toMatchObject({ eligible: 3, panic: false });
    up.delete('b');
    up.delete('c');
    await clock.advanceAsync(1000);
    expect(pool.stats()).toMatchObject({ eligible: 4, panic: true }); // 1 of 4 < 50 %: all of them
    expect((await served(pool, 8)).size).toBe(4);
    up.add('b');
    await clock.advanceAsync(2000);
    await until(() => pool.stats().panic === false);
    expect(pool.stats().eligible).toBe(2);
    expect(panics).toEqual([true, false]);
  });

  it('sends traffic to backups only when the primaries cannot take it', async () => {
    const clock = new ManualClock();
    const up = new Set(['p1', 'p2', 'backup']);
    const [p1, p2, backup] = await Promise.all([named('p1'), named('p2'), named('backup')]);
    const pool = cluster({
      backends: [
        { url: p1.url, id: 'p1' },
        { url: p2.url, id: 'p2' },
        { url: backup.url, id: 'backup', priority: 1 },
      ],
      health: { intervalMs: 1000, unhealthyThreshold: 1, jitter: 0, check: async (e) => up.has(e.id) },
      panicThreshold: 0,
      clock,
    });
    expect((await served(pool, 20)).get('backup')).toBeUndefined();
    up.delete('p1');
    up.delete('p2');
    await clock.advanceAsync(1000);
    expect(Object.fromEntries(await served(pool, 10))).toEqual({ backup: 10 });
  });

  it('ramps a recovered endpoint up over slowStartMs', async () => {
    const clock = new ManualClock();
    const up = new Set(['a', 'b']);
    const [a, b] = await Promise.all([named('a'), named('b')]);
    const pool = cluster({
      backends: [
        { url: a.url, id: 'a', weight: 10 },
        { url: b.url, id: 'b', weight: 10 },
      ],
      health: {
        intervalMs: 1000,
        unhealthyThreshold: 1,
        healthyThreshold: 1,
        jitter: 0,
        check: async (e) => up.has(e.id),
      },
      slowStartMs: 10_000,
      panicThreshold: 0,
      clock,
    });
    const weightOf = () => pool.stats().endpoints.find((e) => e.id === 'b')?.effectiveWeight;
    let upAt = Number.NaN;
    pool.on('endpoint:up', () => {
      upAt = clock.now();
    });
    up.delete('b');
    await clock.advanceAsync(1000);
    expect(pool.stats().eligible).toBe(1);
    up.add('b');
    await clock.advanceAsync(1000); // its next check passes at some point of this second
    expect(weightOf()).toBe(1); // 10 % of 10 at first
    await clock.advanceAsync(upAt + 5000 - clock.now());
    expect(weightOf()).toBeCloseTo(5, 5); // half way
    await clock.advanceAsync(5000);
    expect(weightOf()).toBe(10);
  });

  it('drains: no new requests, and resolves once the ones in flight finish', async () => {
    const held: (() => void)[] = [];
    const slow = await named('slow', (_req, res) => held.push(() => res.end('slow')));
    const fast = await named('fast');
    const pool = cluster({
      backends: [
        { url: slow.url, id: 'slow' },
        { url: fast.url, id: 'fast' },
      ],
      balancer: 'round-robin',
    });
    const first = pool.request({ path: '/' }); // goes to slow, held there
    await until(() => held.length === 1);
    let drained = false;
    const draining = pool.drain('slow').then(() => {
      drained = true;
    });
    expect(Object.fromEntries(await served(pool, 5))).toEqual({ fast: 5 });
    expect(drained).toBe(false);
    held[0]?.();
    expect(await (await first).body.text()).toBe('slow');
    await draining;
    expect(drained).toBe(true);
    expect(pool.stats().endpoints.find((e) => e.id === 'slow')).toMatchObject({
      draining: true,
      inflight: 0,
    });
    await pool.remove('slow');
    expect(pool.endpoints.map((e) => e.id)).toEqual(['fast']);
  });

  it('changes weights and membership at runtime', async () => {
    const [a, b, c] = await Promise.all([named('a'), named('b'), named('c')]);
    const pool = cluster({ backends: [{ url: a.url, id: 'a' }], balancer: 'weighted-round-robin' });
    pool.add({ url: b.url, id: 'b' });
    pool.setWeight('a', 3);
    expect(Object.fromEntries(await served(pool, 8))).toEqual({ a: 6, b: 2 });
    expect(() => pool.add({ url: c.url, id: 'b' })).toThrow(/duplicate endpoint id "b"/);
    expect(() => pool.setWeight('zzz', 1)).toThrow(/no endpoint "zzz"/);
    expect(() => pool.setWeight('a', -1)).toThrow(/weight must be a finite number >= 0/);
  });

  it('opens an endpoint breaker on failures and lets it back in after openMs', async () => {
    const clock = new ManualClock();
    let failing = true;
    const flaky = await named('flaky', (_req, res) => res.writeHead(failing ? 500 : 200).end('flaky'));
    const steady = await named('steady');
    const pool = cluster({
      backends: [
        { url: flaky.url, id: 'flaky' },
        { url: steady.url, id: 'steady' },
      ],
      balancer: 'round-robin',
      circuitBreaker: { failureThreshold: 2, openMs: 5000 },
      outlierDetection: false,
      retry: false,
      panicThreshold: 0,
      clock,
    });
    const opened: string[] = [];
    pool.on('circuit:open', ({ id }) => opened.push(id));
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const response = await pool.request({ path: '/' });
      statuses.push(response.statusCode);
      await response.body.dump();
    }
    expect(statuses).toEqual([500, 200, 500, 200, 200, 200]);
    expect(opened).toEqual(['flaky']);
    failing = false;
    await clock.advanceAsync(5000);
    expect(pool.stats().endpoints.find((e) => e.id === 'flaky')?.circuit).toBe('half-open');
    expect(Object.fromEntries(await served(pool, 4))).toEqual({ flaky: 2, steady: 2 });
    expect(pool.stats().endpoints.find((e) => e.id === 'flaky')?.circuit).toBe('closed');
  });

  it('regression: a response body destroyed unread raises no unhandled error and frees its slot', async () => {
    const a = await named('a', (_req, res) => {
      res.write('part');
      setImmediate(() => res.end('rest'));
    });
    const pool = cluster({ backends: [{ url: a.url, id: 'a' }] });
    const response = await pool.request({ path: '/' });
    const errors: unknown[] = [];
    process.once('uncaughtException', (error) => errors.push(error));
    response.body.destroy();
    await until(() => pool.stats().inflight === 0);
    await new Promise((resolve) => setImmediate(resolve));
    expect(errors).toEqual([]);
  });

  it('reports latency percentiles, rates and pool use', async () => {
    const a = await named('a');
    const pool = cluster({ backends: [{ url: a.url, id: 'a' }] });
    await served(pool, 20);
    const stats = pool.stats();
    expect(stats.latency.count).toBe(20);
    expect(stats.latency.p50).toBeGreaterThan(0);
    expect(stats.latency.p99).toBeGreaterThanOrEqual(stats.latency.p50);
    expect(stats.endpoints[0]?.pool.requests).toBe(20);
    expect(stats.endpoints[0]?.pool.connectionsOpened).toBeLessThanOrEqual(2);
    expect(stats.endpoints[0]?.latencyEwma).toBeGreaterThan(0);
  });

  it('closes every pool and timer, and refuses work afterwards', async () => {
    const clock = new ManualClock();
    const a = await named('a');
    const pool = createCluster({
      backends: [a.url],
      health: { check: async () => true },
      slowStartMs: 1000,
      clock,
    });
    await served(pool, 3);
    await pool.close();
    expect(clock.pending).toBe(0);
    expect(pool.stats().endpoints[0]?.pool.connected).toBe(0);
    await expect(pool.request({ path: '/' })).rejects.toMatchObject({ code: 'ECLOSED' });
  });

  it.each([
    [{ backends: 'http://x' }, /backends must be an array/],
    [{ backends: ['ftp://x'] }, /backends\[0\]\.url must use http:, https: or tcp:/],
    [{ backends: ['http://a:1', 'http://a:1'] }, /duplicate endpoint id "a:1"/],
    [{ backends: [], balancer: 'fastest' }, /balancer must be one of/],
    [{ backends: [], panicThreshold: 120 }, /panicThreshold must be a finite number >= 0 <= 100/],
    [{ backends: [], pool: { connections: 0 } }, /pool.connections/],
    [{ backends: [], retry: { attempts: 0 } }, /attempts must be an integer >= 1/],
    [{ backends: [], nodes: [] }, /Cluster: unknown option "nodes"/],
    [{ backends: [] }, /backends is empty; give at least one, a discovery source, or allowEmpty: true/],
  ])('rejects %j', (options, message) => {
    expect(() => createCluster(options as never)).toThrow(message);
  });
});
