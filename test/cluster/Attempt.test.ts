/**
 * One try, from pick to end: whatever ends it, the endpoint's in-flight count and pool slot are
 * freed once, and the breaker's half-open bound holds under concurrency.
 */
import { describe, expect, it } from 'vitest';
import { until } from '../helpers/async.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { ManualClock } from '../helpers/clock.js';
import { loopbackFixtures } from '../helpers/fixtures.js';

const defer = cleanupAfterEach();

const { upstream, cluster } = loopbackFixtures(defer, 200);

describe('Attempt', () => {
  it('lets exactly halfOpenMaxRequests probes through a half-open breaker under concurrency', async () => {
    const clock = new ManualClock();
    let first = true;
    const backend = await upstream((_req, res) => {
      if (first) {
        first = false;
        res.statusCode = 500;
        res.end();
      } // then: hangs, so every probe stays in flight
    });
    const c = cluster({
      backends: [backend.url],
      circuitBreaker: { failureThreshold: 1, openMs: 100, halfOpenMaxRequests: 2 },
      outlierDetection: false,
      panicThreshold: 0, // no panic mode, which would send past the breaker
      retry: false,
      clock,
    });
    const tripping = await c.request({ path: '/' });
    await tripping.body.dump();
    expect(tripping.statusCode).toBe(500);
    expect(c.stats().endpoints[0]?.circuit).toBe('open');
    clock.advance(100);
    expect(c.stats().endpoints[0]?.circuit).toBe('half-open');
    const results = Array.from({ length: 10 }, () =>
      c
        .stream({ path: '/' }, () => {
          throw new Error('never answered');
        })
        .then(
          () => 'answered',
          (error: { code?: string }) => error.code ?? 'error',
        ),
    );
    const refused: string[] = [];
    for (const result of results) void result.then((code) => refused.push(code));
    await until(() => refused.length === 8 && backend.requests.length === 2);
    expect(refused).toEqual(Array(8).fill('ENOUPSTREAM'));
    expect(c.stats().endpoints[0]?.inflight).toBe(2);
  });

  it('frees the in-flight count and pool slot once, whichever way a try ends', async () => {
    const backend = await upstream((req, res) => {
      if (req.url === '/reset') req.socket.resetAndDestroy();
      else res.end('body');
    });
    const c = cluster({ backends: [backend.url], retry: false, outlierDetection: false });
    const read = await c.request({ path: '/' });
    await read.body.text();
    const dropped = await c.request({ path: '/' });
    dropped.body.destroy();
    await c.request({ path: '/reset' }).catch(() => undefined);
    await c.fetch('/').then((response) => response.text());
    await c
      .execute(async () => {
        throw new Error('work failed');
      })
      .catch(() => undefined);
    await until(() => c.stats().inflight === 0);
    const endpoint = c.stats().endpoints[0];
    expect(endpoint).toMatchObject({ inflight: 0, requests: 5, errors: 2 });
    expect(endpoint?.pool.pending).toBe(0);
  });
});
