/**
 * What takes traffic inside a Cluster: zone-aware spill-over measured against the whole membership,
 * recovery after every backend was down, and the cool-down a `Retry-After` asks for. Real loopback
 * backends and real health checks; time is a ManualClock.
 */
import { describe, expect, it } from 'vitest';
import { ZoneAwareBalancer } from '../../src/balancer/ZoneAwareBalancer.js';
import { until } from '../helpers/async.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { ManualClock } from '../helpers/clock.js';
import { loopbackFixtures } from '../helpers/fixtures.js';
import { seededRandom } from '../helpers/random.js';

const defer = cleanupAfterEach();

const { upstream, cluster } = loopbackFixtures(defer, 500);

describe('Cluster eligibility', () => {
  it('spills a local zone at 50 % health over to the others: 70 % ± 5 % of 2,000 requests stay local', async () => {
    const clock = new ManualClock();
    const healthy = (_req: unknown, res: { end(body: string): void }) => res.end('ok');
    const failing = (_req: unknown, res: { statusCode: number; end(): void }) => {
      res.statusCode = 503;
      res.end();
    };
    const servers = await Promise.all(
      [healthy, healthy, failing, failing, healthy, healthy, healthy, healthy].map((handler) =>
        upstream(handler as never),
      ),
    );
    const c = cluster({
      backends: servers.map((server, i) => ({
        url: server.url,
        id: `e${i}`,
        zone: i < 4 ? 'local' : 'remote',
      })),
      balancer: new ZoneAwareBalancer({ localZone: 'local', random: seededRandom(7) }),
      health: { intervalMs: 1000, unhealthyThreshold: 1, healthyThreshold: 1, jitter: 0, clock },
      random: seededRandom(3),
      clock,
    });
    const down: string[] = [];
    c.on('endpoint:down', ({ id }) => down.push(id));
    clock.advance(1000); // every endpoint's first check
    await until(() => down.length === 2);
    expect(down.sort()).toEqual(['e2', 'e3']);
    let local = 0;
    for (let i = 0; i < 2000; i++) {
      const zone = await c.execute(async (endpoint) => endpoint.zone);
      if (zone === 'local') local++;
    }
    expect(local / 2000).toBeGreaterThanOrEqual(0.65);
    expect(local / 2000).toBeLessThanOrEqual(0.75);
  });

  it('lets a backend that returns after all were down serve at once, breakers and ejections notwithstanding', async () => {
    const clock = new ManualClock();
    let aUp = false;
    const a = await upstream((_req, res) => {
      res.statusCode = aUp ? 200 : 503;
      res.end('a');
    });
    const b = await upstream((_req, res) => {
      res.statusCode = 503;
      res.end('b');
    });
    const c = cluster({
      backends: [
        { url: a.url, id: 'a' },
        { url: b.url, id: 'b' },
      ],
      balancer: 'round-robin',
      health: { intervalMs: 1000, unhealthyThreshold: 1, healthyThreshold: 1, jitter: 0, clock },
      outlierDetection: { consecutive5xx: 2, baseEjectionMs: 30_000, maxEjectionPercent: 100 },
      circuitBreaker: { failureThreshold: 2, openMs: 30_000 },
      retry: { backoff: { baseMs: 0 } },
      clock,
    });
    const down: string[] = [];
    c.on('endpoint:down', ({ id }) => down.push(id));
    clock.advance(1000);
    await until(() => down.length === 2);
    expect(c.panic).toBe(true);
    for (let i = 0; i < 6; i++) expect((await c.request({ path: '/' })).statusCode).toBe(503);
    const stats = c.stats().endpoints;
    expect(stats.map((e) => [e.ejected, e.circuit])).toEqual([
      [true, 'open'],
      [true, 'open'],
    ]);

    aUp = true; // a comes back: its next check passes, 1 s later at most
    const up: string[] = [];
    c.on('endpoint:up', ({ id }) => up.push(id));
    clock.advance(1000);
    await until(() => up.includes('a'));
    const response = await c.request({ path: '/' });
    expect([response.statusCode, await response.body.text()]).toEqual([200, 'a']);
    expect(c.stats().endpoints[0]).toMatchObject({ healthy: true, ejected: false });
  });

  it('cools down an endpoint that answers 503 with Retry-After, and retries elsewhere without waiting', async () => {
    const clock = new ManualClock(); // never advanced: a retry that waited 5 s would never finish
    const busy = await upstream((_req, res) => {
      res.writeHead(503, { 'retry-after': '5' });
      res.end('busy');
    });
    const free = await upstream((_req, res) => res.end('free'));
    const c = cluster({
      backends: [
        { url: busy.url, id: 'busy' },
        { url: free.url, id: 'free' },
      ],
      balancer: 'round-robin',
      outlierDetection: false,
      retry: { backoff: { baseMs: 0 } }, // no backoff either: only the Retry-After could make it wait
      clock,
    });
    for (let i = 0; i < 20; i++) {
      const response = await c.request({ path: '/' });
      expect([response.statusCode, await response.body.text()]).toEqual([200, 'free']);
    }
    expect(busy.requests).toHaveLength(1); // out of rotation for 5 s after its answer
    expect(c.stats().endpoints[0]).toMatchObject({ coolingDown: true, eligible: false });
    clock.advance(5000);
    expect(c.stats().endpoints[0]).toMatchObject({ coolingDown: false, eligible: true });
  });
});
