import { describe, expect, it } from 'vitest';
import {
  type CheckResult,
  type HealthCheckOptions,
  HealthMonitor,
  tcpCheck,
} from '../../src/health/HealthMonitor.js';
import { flush, until } from '../helpers/async.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { ManualClock } from '../helpers/clock.js';
import { seededRandom } from '../helpers/random.js';
import { closedPort, hangingUpstream, startUpstream, type Upstream } from '../helpers/upstreams.js';

const defer = cleanupAfterEach();

function monitor(options: HealthCheckOptions = {}) {
  const clock = new ManualClock();
  const health = new HealthMonitor({ clock, random: seededRandom(1), jitter: 0, ...options });
  defer(() => health.close());
  const events: string[] = [];
  health.on('endpoint:down', ({ id, reason }) => events.push(`down ${id} ${reason}`));
  health.on('endpoint:up', ({ id }) => events.push(`up ${id}`));
  return { clock, health, events };
}

async function upstream(handler: Parameters<typeof startUpstream>[0]): Promise<Upstream> {
  const server = await startUpstream(handler);
  defer(() => server.close());
  return server;
}

describe('HealthMonitor over HTTP', () => {
  it('falls after unhealthyThreshold failures and rises after healthyThreshold passes', async () => {
    let status = 200;
    const server = await upstream((req, res) => {
      expect(req.url).toBe('/healthz');
      res.writeHead(status).end();
    });
    const { health, events } = monitor({ path: '/healthz', unhealthyThreshold: 3, healthyThreshold: 2 });
    health.add({ id: 'a', url: `${server.url}/base/path` });
    expect((await health.checkNow('a')).ok).toBe(true);
    status = 503;
    for (let i = 0; i < 2; i++)
      expect(await health.checkNow('a')).toMatchObject({ ok: false, reason: 'status 503' });
    expect(health.isHealthy('a')).toBe(true);
    await health.checkNow('a');
    expect(health.isHealthy('a')).toBe(false);
    status = 204;
    await health.checkNow('a');
    expect(health.isHealthy('a')).toBe(false);
    await health.checkNow('a');
    expect(health.isHealthy('a')).toBe(true);
    expect(events).toEqual(['down a status 503', 'up a']);
    expect(health.health('a')).toMatchObject({
      healthy: true,
      consecutiveSuccesses: 2,
      consecutiveFailures: 0,
    });
  });

  it('matches status ranges, headers and the body, as nginx match blocks do', async () => {
    let body = '{"status":"healthy","database":{"status":"ok"}}';
    const server = await upstream((_req, res) => {
      res.writeHead(299, { 'Content-Type': 'application/json; charset=utf-8' }).end(body);
    });
    const { health } = monitor({
      expectStatus: ['200-299', 304],
      expectHeaders: { 'content-type': /^application\/json/ },
      expectBody: /"status":"healthy"/g,
    });
    health.add({ id: 'a', url: server.url });
    expect((await health.checkNow('a')).ok).toBe(true);
    expect((await health.checkNow('a')).ok).toBe(true); // a /g pattern still matches the second time
    body = '{"status":"degraded"}';
    expect(await health.checkNow('a')).toMatchObject({ ok: false, reason: 'body mismatch' });
    const strict = monitor({ expectHeaders: { 'content-type': 'application/json' } });
    strict.health.add({ id: 'b', url: server.url });
    expect(await strict.health.checkNow('b')).toMatchObject({
      ok: false,
      reason: 'header content-type mismatch',
    });
  });

  it('aborts a check that outlives timeoutMs and counts it as a timeout', async () => {
    const server = await hangingUpstream();
    defer(() => server.close());
    const { clock, health } = monitor({ timeoutMs: '2s' });
    health.add({ id: 'slow', url: server.url });
    const result = health.checkNow('slow');
    await until(() => server.requests.length === 1);
    clock.advance(2000);
    expect(await result).toMatchObject({ ok: false, reason: 'timeout' });
    await until(() => server.requests[0]?.destroyed === true); // the request was really aborted
  });

  it('reports a refused connection', async () => {
    const port = await closedPort();
    const { health } = monitor();
    health.add({ id: 'gone', url: `http://127.0.0.1:${port}` });
    expect(await health.checkNow('gone')).toMatchObject({ ok: false, reason: 'connect-failure' });
  });

  it('checks TCP with tcpCheck()', async () => {
    const server = await upstream((_req, res) => res.end());
    const port = await closedPort();
    const { health } = monitor({ check: tcpCheck() });
    health.add({ id: 'open', url: server.url });
    health.add({ id: 'closed', url: `http://127.0.0.1:${port}` });
    expect((await health.checkNow('open')).ok).toBe(true);
    expect(await health.checkNow('closed')).toMatchObject({ ok: false, reason: 'connect-failure' });
  });
});

describe('HealthMonitor scheduling', () => {
  it('spreads first checks over the interval, then checks every interval after the last ended', async () => {
    const started: [string, number][] = [];
    const { clock, health } = monitor({
      intervalMs: 1000,
      check: async (endpoint) => {
        started.push([endpoint.id, clock.now()]);
        return true;
      },
    });
    for (let i = 0; i < 50; i++) health.add({ id: `e${i}`, url: 'http://127.0.0.1:1' });
    await clock.advanceAsync(999);
    const firsts = started.map(([, at]) => at);
    expect(firsts).toHaveLength(50);
    expect(Math.min(...firsts)).toBeLessThan(100);
    expect(Math.max(...firsts)).toBeGreaterThan(900);
    const e0 = (started.find(([id]) => id === 'e0') as [string, number])[1];
    await clock.advanceAsync(1001);
    expect(started.filter(([id]) => id === 'e0').map(([, at]) => at)).toEqual([e0, e0 + 1000]);
  });

  it('never overlaps two checks of one endpoint, however long one takes', async () => {
    let running = 0;
    let most = 0;
    let release: () => void = () => {};
    const { clock, health } = monitor({
      intervalMs: 100,
      timeoutMs: 1_000_000,
      check: () => {
        running++;
        most = Math.max(most, running);
        return new Promise<boolean>((resolve) => {
          release = () => {
            running--;
            resolve(true);
          };
        });
      },
    });
    health.add({ id: 'a', url: 'http://127.0.0.1:1' });
    clock.advance(100);
    await flush();
    expect(running).toBe(1);
    clock.advance(10_000); // a hundred intervals
    await flush();
    expect(running).toBe(1);
    const joined = health.checkNow('a'); // joins the running check
    release();
    await joined;
    expect(most).toBe(1);
  });

  it('keeps a new endpoint out until it passes, with startHealthy: false', async () => {
    const { health, events } = monitor({ startHealthy: false, healthyThreshold: 1, check: async () => true });
    health.add({ id: 'a', url: 'http://127.0.0.1:1' });
    expect(health.isHealthy('a')).toBe(false);
    await health.checkNow('a');
    expect(events).toEqual(['up a']);
  });

  it('treats false and thrown errors from a custom check as failures, and emits each result', async () => {
    const results: CheckResult[] = [];
    let answer: () => Promise<boolean> = async () => false;
    const { health } = monitor({ unhealthyThreshold: 1, check: () => answer() });
    health.on('check', (result) => results.push(result));
    health.add({ id: 'a', url: 'http://127.0.0.1:1' });
    await health.checkNow('a');
    answer = () => Promise.reject(new Error('ping failed'));
    await health.checkNow('a');
    expect(results.map((r) => r.reason)).toEqual(['check returned false', 'ping failed']);
  });

  it('stops every timer and aborts running checks on close, and on remove', async () => {
    const signals: AbortSignal[] = [];
    const { clock, health } = monitor({
      intervalMs: 100,
      check: (_endpoint, signal) => {
        signals.push(signal);
        return new Promise(() => {});
      },
    });
    health.add({ id: 'a', url: 'http://127.0.0.1:1' });
    health.add({ id: 'b', url: 'http://127.0.0.1:2' });
    clock.advance(100);
    await flush();
    expect(signals).toHaveLength(2);
    health.remove('a');
    expect(signals[0]?.aborted).toBe(true);
    const closing = health.close();
    expect(signals[1]?.aborted).toBe(true);
    await closing; // ends although the checks ignore their signal
    expect(clock.pending).toBe(0);
    expect(() => health.add({ id: 'c', url: 'http://127.0.0.1:3' })).toThrow(/closed/);
  });

  it.each([
    [{ path: 'health' }, /path must be a string starting with "\/"/],
    [{ intervalMs: '0s' }, /intervalMs must be > 0/],
    [{ expectStatus: '2yy' }, /expectStatus entries must be a status/],
    [{ expectStatus: [] }, /expectStatus must name at least one status/],
    [{ jitter: 2 }, /jitter must be a finite number >= 0 <= 1/],
    [{ unhealthyThreshold: 0 }, /unhealthyThreshold must be an integer >= 1/],
    [{ expectBody: 42 }, /expectBody must be a string or a RegExp/],
    [{ interval: 5 }, /HealthMonitor: unknown option "interval"/],
  ])('rejects %j', (options, message) => {
    expect(() => new HealthMonitor(options as never)).toThrow(message);
  });
});
