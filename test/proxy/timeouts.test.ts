/**
 * Per-attempt timeouts fire on time: `firstByteMs` is the proxy's own timer, to the millisecond, not
 * undici's half-second tick. Wall-clock bounds, not waits: each test ends when the answer comes.
 * Each test first sends one request that is answered, so that the measured one runs on warm code
 * and pooled connections: what is timed is the timer, not a cold start on a busy machine.
 */
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { createCluster } from '../../src/cluster/Cluster.js';
import { createProxy } from '../../src/proxy/createProxy.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { startUpstream } from '../helpers/upstreams.js';

const defer = cleanupAfterEach();

/** An upstream that answers `/warm` at once and never answers anything else. */
async function hangingExceptWarmUp() {
  const upstream = await startUpstream((req, res) => {
    if (req.url === '/warm') res.end('warm');
  });
  defer(() => upstream.close());
  return upstream;
}

describe('precise timeouts', () => {
  it.each([100, 300])('answers 504 within a few ms of firstByteMs: %i', async (firstByteMs) => {
    const hung = await hangingExceptWarmUp();
    const proxy = createProxy({
      cluster: { backends: [hung.url], retry: false },
      timeouts: { firstByteMs },
    });
    const port = ((await proxy.listen(0)).address() as AddressInfo).port;
    defer(() => proxy.close({ timeoutMs: 100 }));
    expect(await (await request(`http://127.0.0.1:${port}/warm`)).body.text()).toBe('warm');
    const started = performance.now();
    const response = await request(`http://127.0.0.1:${port}/slow`);
    const elapsed = performance.now() - started;
    expect(response.statusCode).toBe(504);
    expect(await response.body.json()).toMatchObject({ error: { code: 'EUPSTREAMTIMEOUT' } });
    expect(elapsed).toBeGreaterThanOrEqual(firstByteMs);
    expect(elapsed).toBeLessThan(firstByteMs + 50);
  });

  it("times Cluster.request()'s headersTimeoutMs the same way", async () => {
    const hung = await hangingExceptWarmUp();
    const cluster = createCluster({ backends: [hung.url], retry: false });
    defer(() => cluster.close({ timeoutMs: 100 }));
    expect(await (await cluster.request({ path: '/warm' })).body.text()).toBe('warm');
    const started = performance.now();
    const error = await cluster.request({ path: '/', headersTimeoutMs: 100 }).catch((e: unknown) => e);
    const elapsed = performance.now() - started;
    expect(error).toMatchObject({ code: 'EUPSTREAMTIMEOUT' });
    expect(elapsed).toBeGreaterThanOrEqual(99);
    expect(elapsed).toBeLessThan(150);
    expect(cluster.stats().inflight).toBe(0);
  });
});
