/**
 * How a cluster call retries: within the budget over time when every backend fails, requeued
 * outside it when an attempt never reached a backend, and never again for a POST that was written.
 */
import { describe, expect, it } from 'vitest';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { ManualClock } from '../helpers/clock.js';
import { loopbackFixtures } from '../helpers/fixtures.js';
import { closedPort } from '../helpers/upstreams.js';

const defer = cleanupAfterEach();

const { upstream, cluster } = loopbackFixtures(defer, 200);

describe('cluster retries', () => {
  it('keeps retries within the budget over the window in a storm where every backend answers 503', async () => {
    const clock = new ManualClock(1_000);
    const failing = await Promise.all(
      [0, 1, 2].map(() =>
        upstream((_req, res) => {
          res.statusCode = 503;
          res.end();
        }),
      ),
    );
    const c = cluster({
      backends: failing.map((server) => server.url),
      outlierDetection: false,
      retry: { attempts: 3, backoff: { baseMs: 0 } },
      clock,
    });
    // 1,000 GETs over 10 s of the injected clock: each would like two retries.
    let retriesBefore = 0;
    for (let i = 0; i < 1000; i++) {
      const response = await c.request({ path: '/' });
      await response.body.dump();
      expect(response.statusCode).toBe(503);
      clock.advance(10);
      if (i === 499) retriesBefore = c.stats().retries;
    }
    const { retries, retryBudgetExhausted } = c.stats();
    // 20 % of the requests of the last 10 s, plus 10 per second over them: 200 + 100.
    expect(retries).toBeLessThanOrEqual(300);
    expect(retries).toBeGreaterThan(200); // the budget is spent, not refused from the start
    // A refused retry ends its request: each request got its two retries or was refused once.
    expect(retryBudgetExhausted).toBeGreaterThan(500);
    expect(retries + retryBudgetExhausted).toBeLessThanOrEqual(2000);
    expect(retries - retriesBefore).toBeLessThanOrEqual(300); // and over any part of the window
    const requests = failing.reduce((sum, server) => sum + server.requests.length, 0);
    expect(requests).toBe(1000 + retries);
  });

  it('requeues attempts that never reached a backend, for a POST too, without drawing on the budget', async () => {
    const live = await upstream((req, res) => {
      req.resume();
      req.on('end', () => res.end('live'));
    });
    const dead = `http://127.0.0.1:${await closedPort()}`;
    const c = cluster({
      backends: [
        { url: dead, id: 'dead-1' },
        { url: `http://127.0.0.1:${await closedPort()}`, id: 'dead-2' },
        { url: live.url, id: 'live' },
      ],
      balancer: 'round-robin',
      outlierDetection: false,
      retry: { budget: { budgetPercent: 0, minRetriesPerSecond: 0 } }, // no retry at all
    });
    for (let i = 0; i < 6; i++) {
      const response = await c.request({ method: 'POST', path: '/orders', body: '{"n":1}' });
      expect(await response.body.text()).toBe('live');
    }
    expect(c.stats()).toMatchObject({ retries: 0, retryBudgetExhausted: 0 });
    expect(c.stats().requeues).toBeGreaterThanOrEqual(4);
    expect(live.requests).toHaveLength(6);
  });
});
