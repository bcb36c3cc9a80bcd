import type { AddressInfo } from 'node:net';
// @ts-expect-error: the parser ships no types
import parsePrometheus from 'parse-prometheus-text-format';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { registerMcgravityMetrics } from '../../src/prometheus/index.js';
import { createProxy } from '../../src/proxy/createProxy.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { startUpstream } from '../helpers/upstreams.js';

const defer = cleanupAfterEach();

interface Family {
  name: string;
  type: string;
  metrics: {
    value?: string;
    labels?: Record<string, string>;
    buckets?: Record<string, string>;
    count?: string;
  }[];
}

describe('mcgravity/prometheus', () => {
  it("registers a proxy's metrics into the service's own registry, with latency histograms", async () => {
    const backend = await startUpstream((_req, res) => res.end('ok'));
    defer(() => backend.close());
    const proxy = createProxy({ cluster: { backends: [{ url: backend.url, id: 'b1' }] } });
    const port = ((await proxy.listen(0)).address() as AddressInfo).port;
    defer(() => proxy.close({ timeoutMs: 100 }));
    const registry = new Registry();
    registry.registerMetric(
      new (await import('prom-client')).Counter({
        name: 'app_jobs_total',
        help: 'The app’s own metric.',
        registers: [],
      }),
    );
    const unregister = registerMcgravityMetrics({ registry, proxy });
    for (let i = 0; i < 5; i++) await (await fetch(`http://127.0.0.1:${port}/x`)).text();

    const text = await registry.metrics();
    const families = parsePrometheus(text) as Family[];
    const byName = new Map(families.map((family) => [family.name, family]));
    expect(byName.has('app_jobs_total')).toBe(true); // one registry for the app and for mcgravity
    expect(byName.get('mcgravity_requests_total')?.metrics).toEqual([
      { value: '5', labels: { cluster: 'default', endpoint: 'b1' } },
    ]);
    expect(byName.get('mcgravity_attempt_duration_seconds')?.type).toBe('HISTOGRAM');
    // The parser drops a histogram's labels, so its lines are read as text.
    expect(text).toContain(
      'mcgravity_attempt_duration_seconds_count{cluster="default",endpoint="b1",outcome="2xx"} 5',
    );
    expect(text).toMatch(
      /mcgravity_attempt_duration_seconds_bucket\{le="0\.001",cluster="default",endpoint="b1",outcome="2xx"\} \d/,
    );
    expect(text).toContain('mcgravity_proxy_request_duration_seconds_count{status_class="2xx"} 5');

    unregister();
    const after = (parsePrometheus(await registry.metrics()) as Family[]).map((family) => family.name);
    expect(after).toEqual(['app_jobs_total']);
  });
});
