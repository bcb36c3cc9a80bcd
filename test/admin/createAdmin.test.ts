import { createHash } from 'node:crypto';
import http, { type RequestListener } from 'node:http';
import net, { type AddressInfo } from 'node:net';
// @ts-expect-error: the parser ships no types
import parsePrometheus from 'parse-prometheus-text-format';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { type AdminChange, createAdmin } from '../../src/admin/createAdmin.js';
import { type Cluster, createCluster } from '../../src/cluster/Cluster.js';
import { RateLimiter } from '../../src/limit/RateLimiter.js';
import { createProxy } from '../../src/proxy/createProxy.js';
import { until } from '../helpers/async.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { closedPort, startUpstream } from '../helpers/upstreams.js';

const TOKEN = 'test-token-0123456789';

interface Family {
  name: string;
  type: string;
  metrics: { value: string; labels?: Record<string, string> }[];
}

const defer = cleanupAfterEach();

async function setup() {
  const upstreams = await Promise.all([startUpstream(), startUpstream()]);
  for (const u of upstreams) defer(() => u.close());
  const web = createCluster({
    name: 'web',
    backends: upstreams.map((u, i) => ({ url: u.url, id: `web-${i}` })),
  });
  const empty = createCluster({ name: 'empty', backends: [], allowEmpty: true });
  defer(() => web.close({ timeoutMs: 500 }));
  defer(() => empty.close({ timeoutMs: 500 }));
  const limiter = new RateLimiter({ limit: 1, windowMs: '1m' });
  await limiter.consume('a');
  await limiter.consume('a');
  const server = http.createServer(
    createAdmin({
      clusters: { web, empty },
      limiters: { api: limiter },
      proxy: { inflight: 3, mcpSessions: () => ({ mcp: { 'replica-1': 4, 'replica-2': 0 } }) },
      token: TOKEN,
    }),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  defer(() => new Promise((resolve) => server.close(resolve)));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { web, empty, base, upstreams };
}

async function serve(listener: RequestListener): Promise<string> {
  const server = http.createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  defer(() => new Promise((resolve) => server.close(resolve)));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function call(url: string, options: { method?: string; body?: unknown; token?: string } = {}) {
  const response = await request(url, {
    method: (options.method ?? 'GET') as 'GET',
    headers: {
      ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(options.token === undefined ? {} : { authorization: `Bearer ${options.token}` }),
    },
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
  });
  const text = await response.body.text();
  return { status: response.statusCode, headers: response.headers, text, json: () => JSON.parse(text) };
}

describe('createAdmin', () => {
  it('answers health and readiness', async () => {
    const { base, empty, upstreams } = await setup();
    expect((await call(`${base}/health`)).json()).toEqual({ status: 'ok' });
    const notReady = await call(`${base}/ready`);
    expect(notReady.status).toBe(503);
    expect(notReady.json()).toEqual({ ready: false, clustersWithoutEndpoints: ['empty'] });
    empty.add({ url: upstreams[0]?.url as string, id: 'e1' });
    expect((await call(`${base}/ready`)).status).toBe(200);
  });

  it('exposes Prometheus metrics that a real parser reads', async () => {
    const { base, web } = await setup();
    for (let i = 0; i < 4; i++) await (await web.request({ path: '/' })).body.dump();
    const response = await call(`${base}/metrics`);
    expect(response.headers['content-type']).toContain('text/plain; version=0.0.4');
    const families = parsePrometheus(response.text) as Family[];
    const family = (name: string) => families.find((f) => f.name === name) as Family;
    const requests = family('mcgravity_requests_total');
    expect(requests.type).toBe('COUNTER');
    expect(requests.metrics.reduce((sum, m) => sum + Number(m.value), 0)).toBe(4);
    expect(requests.metrics[0]?.labels).toMatchObject({ cluster: 'web' });
    expect(family('mcgravity_latency_seconds').metrics.map((m) => m.labels?.quantile)).toContain('0.99');
    expect(family('mcgravity_endpoint_eligible').metrics.every((m) => m.value === '1')).toBe(true);
    const circuit = family('mcgravity_circuit_state').metrics.filter((m) => m.labels?.state === 'closed');
    expect(circuit.every((m) => m.value === '1')).toBe(true);
    expect(family('mcgravity_pool_connections').type).toBe('GAUGE');
    expect(family('mcgravity_ratelimit_requests_total').metrics).toEqual(
      expect.arrayContaining([
        { value: '1', labels: { limiter: 'api', outcome: 'allowed' } },
        { value: '1', labels: { limiter: 'api', outcome: 'limited' } },
      ]),
    );
    expect(family('mcgravity_proxy_inflight_requests').metrics[0]?.value).toBe('3');
    expect(family('mcgravity_mcp_sessions').metrics).toEqual([
      { labels: { cluster: 'mcp', endpoint: 'replica-1' }, value: '4' },
      { labels: { cluster: 'mcp', endpoint: 'replica-2' }, value: '0' },
    ]);
    expect(family('mcgravity_retries_total')).toBeDefined();
  });

  it('reports cluster health and performance as JSON', async () => {
    const { base, web } = await setup();
    await (await web.request({ path: '/' })).body.dump();
    const health = (await call(`${base}/api/v1/health/clusters`)).json();
    expect(health.clusters.web.eligible).toBe(2);
    expect(health.clusters.web.endpoints[0]).toMatchObject({
      id: 'web-0',
      eligible: true,
      circuit: 'closed',
    });
    const performance = (await call(`${base}/api/v1/metrics/performance`)).json();
    expect(performance.clusters.web.requests).toBe(1);
    expect(performance.proxy).toEqual({
      inflight: 3,
      mcpSessions: { mcp: { 'replica-1': 4, 'replica-2': 0 } },
    });
  });

  it('changes backends only with the bearer token', async () => {
    const { base, web } = await setup();
    const port = await closedPort();
    const denied = await call(`${base}/api/v1/clusters/web/backends`, {
      method: 'POST',
      body: { url: `http://127.0.0.1:${port}` },
    });
    expect(denied.status).toBe(401);
    expect(denied.headers['www-authenticate']).toBe('Bearer');
    const wrong = await call(`${base}/api/v1/clusters/web/backends`, {
      method: 'POST',
      token: 'x'.repeat(21),
      body: {},
    });
    expect(wrong.status).toBe(401);
    const added = await call(`${base}/api/v1/clusters/web/backends`, {
      method: 'POST',
      token: TOKEN,
      body: { url: `http://127.0.0.1:${port}`, id: 'new', weight: 3 },
    });
    expect(added.status).toBe(201);
    expect(web.endpoints.map((e) => e.id)).toContain('new');
    const patched = await call(`${base}/api/v1/clusters/web/backends/new`, {
      method: 'PATCH',
      token: TOKEN,
      body: { weight: 5 },
    });
    expect(patched.json()).toMatchObject({ id: 'new', weight: 5, draining: false });
    const drained = await call(`${base}/api/v1/clusters/web/backends/new/drain`, {
      method: 'POST',
      token: TOKEN,
    });
    expect(drained.status).toBe(202);
    expect(web.stats().endpoints.find((e) => e.id === 'new')?.draining).toBe(true);
    const removed = await call(`${base}/api/v1/clusters/web/backends/new`, {
      method: 'DELETE',
      token: TOKEN,
    });
    expect(removed.status).toBe(202);
    await until(() => !web.endpoints.some((e) => e.id === 'new'));
  });

  it('says what is wrong with a bad change', async () => {
    const { base } = await setup();
    const cases: [string, string, unknown, number, string][] = [
      ['POST', '/api/v1/clusters/web/backends', { url: 'ftp://x' }, 400, 'must use http:, https: or tcp:'],
      [
        'PATCH',
        '/api/v1/clusters/web/backends/web-0',
        { weight: -2 },
        400,
        'weight must be a finite number >= 0',
      ],
      ['PATCH', '/api/v1/clusters/web/backends/web-0', { color: 'red' }, 400, 'unknown field "color"'],
      ['PATCH', '/api/v1/clusters/web/backends/nope', { weight: 1 }, 404, 'has no backend "nope"'],
      ['POST', '/api/v1/clusters/nope/backends', { url: 'http://x' }, 404, 'no cluster named "nope"'],
      ['PUT', '/api/v1/clusters/web/backends/web-0', {}, 405, 'PUT is not allowed'],
    ];
    for (const [method, path, body, status, message] of cases) {
      const response = await call(`${base}${path}`, { method, body, token: TOKEN });
      expect(response.status, `${method} ${path}`).toBe(status);
      expect(response.json().error.message).toContain(message);
    }
  });

  it('refuses every change when no token is configured', async () => {
    const cluster: Cluster = createCluster({ backends: [], allowEmpty: true });
    defer(() => cluster.close());
    const server = http.createServer(createAdmin({ clusters: { c: cluster } }));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    defer(() => new Promise((resolve) => server.close(resolve)));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const response = await call(`${base}/api/v1/clusters/c/backends`, {
      method: 'POST',
      token: 'anything-at-all-123',
      body: {},
    });
    expect(response.status).toBe(403);
    expect(() => createAdmin({ clusters: {}, token: 'short' })).toThrow(
      /token must be a string of at least 16 characters/,
    );
  });

  it('answers a malformed percent-encoding with 400, and tells a caller without the token nothing', async () => {
    const { base } = await setup();
    const malformed = await call(`${base}/api/v1/clusters/%ZZ/backends`);
    expect(malformed.status).toBe(400);
    expect(malformed.json().error).toMatchObject({ code: 'EBADREQUEST' });
    const withToken = await call(`${base}/api/v1/clusters/web/backends/%E0%A4%A`, {
      method: 'DELETE',
      token: TOKEN,
    });
    expect(withToken.status).toBe(400);
    // Without the token, a change is refused before anything is looked up: an existing cluster and a
    // missing one, a malformed name, all get the same 401.
    for (const path of [
      '/api/v1/clusters/web/backends',
      '/api/v1/clusters/nope/backends',
      '/api/v1/clusters/%ZZ/backends',
    ]) {
      const response = await call(`${base}${path}`, { method: 'POST', body: { url: 'http://127.0.0.1:1' } });
      expect(response.status, path).toBe(401);
      expect(response.headers['www-authenticate']).toBe('Bearer');
    }
  });

  it('refuses backend URLs with credentials and unknown fields, so no read ever shows a password', async () => {
    const { base } = await setup();
    const credentials = await call(`${base}/api/v1/clusters/web/backends`, {
      method: 'POST',
      token: TOKEN,
      body: { url: 'http://user:secret@127.0.0.1:1' },
    });
    expect(credentials.status).toBe(400);
    expect(credentials.json().error.message).toMatch(/must not carry credentials/);
    const unknown = await call(`${base}/api/v1/clusters/web/backends`, {
      method: 'POST',
      token: TOKEN,
      body: { url: 'http://127.0.0.1:1', colour: 'red' },
    });
    expect(unknown.status).toBe(400);
    expect(unknown.json().error.message).toMatch(/unknown option "colour"/);
    const reads = await Promise.all(
      [
        '/metrics',
        '/api/v1/health/clusters',
        '/api/v1/metrics/performance',
        '/api/v1/clusters/web/backends',
      ].map((path) => call(`${base}${path}`)),
    );
    for (const read of reads) expect(read.text).not.toContain('secret');
  });

  it('answers a small upload that stalls with 408', async () => {
    const cluster: Cluster = createCluster({ backends: [], allowEmpty: true });
    defer(() => cluster.close());
    const server = http.createServer(
      createAdmin({ clusters: { c: cluster }, token: TOKEN, bodyTimeoutMs: 200 }),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    defer(() => new Promise((resolve) => server.close(resolve)));
    const port = (server.address() as AddressInfo).port;
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.write(
          `POST /api/v1/clusters/c/backends HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\n` +
            'Content-Type: application/json\r\nContent-Length: 40\r\n\r\n{"url":',
        ); // and never the rest
      });
      let text = '';
      socket.on('data', (chunk) => {
        text += chunk.toString();
      });
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
    expect(answer).toContain('"code":"EREQUESTTIMEOUT"');
  });

  it('observes a proxy built from options: createAdmin({ proxy }) reports and manages proxy.clusters', async () => {
    const upstream = await startUpstream();
    defer(() => upstream.close());
    const proxy = createProxy({
      routes: [
        { name: 'api', match: { pathPrefix: '/api' }, cluster: { backends: [upstream.url] } },
        { cluster: { backends: [upstream.url] } },
      ],
    });
    defer(() => proxy.close({ timeoutMs: 100 }));
    expect(Object.keys(proxy.clusters)).toEqual(['api', 'routes[1]']);
    const server = http.createServer(createAdmin({ proxy, token: TOKEN }));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    defer(() => new Promise((resolve) => server.close(resolve)));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const health = (await call(`${base}/api/v1/health/clusters`)).json();
    expect(Object.keys(health.clusters)).toEqual(['api', 'routes[1]']);
    expect((await call(`${base}/metrics`)).text).toContain(
      'mcgravity_cluster_eligible_endpoints{cluster="api"} 1',
    );
    const drained = await call(
      `${base}/api/v1/clusters/api/backends/${encodeURIComponent(proxy.clusters.api?.endpoints[0]?.id ?? '')}/drain`,
      {
        method: 'POST',
        token: TOKEN,
      },
    );
    expect(drained.status).toBe(202);
    expect(() => createAdmin({} as never)).toThrow(/createAdmin needs clusters/);
  });

  it('reports every change to onChange, with who made it, before and after', async () => {
    const upstream = await startUpstream();
    defer(() => upstream.close());
    const web = createCluster({ name: 'web', backends: [{ url: upstream.url, id: 'a' }], health: false });
    defer(() => web.close({ timeoutMs: 0 }));
    const changes: AdminChange[] = [];
    const base = await serve(
      createAdmin({ clusters: { web }, token: TOKEN, onChange: (c) => changes.push(c) }),
    );
    await call(`${base}/api/v1/clusters/web/backends/a`, {
      method: 'PATCH',
      body: { weight: 7 },
      token: TOKEN,
    });
    await call(`${base}/api/v1/clusters/web/backends`, {
      method: 'POST',
      body: { url: 'http://127.0.0.1:1', id: 'b' },
      token: TOKEN,
    });
    await call(`${base}/api/v1/clusters/web/backends/b`, { method: 'DELETE', token: TOKEN });
    // Refused changes are not changes.
    await call(`${base}/api/v1/clusters/web/backends/a`, {
      method: 'PATCH',
      body: { weight: -1 },
      token: TOKEN,
    });
    await call(`${base}/api/v1/clusters/web/backends/a`, { method: 'PATCH', body: { weight: 1 } });

    const actor = `token:${createHash('sha256').update(TOKEN).digest('hex').slice(0, 8)}`;
    expect(changes).toEqual([
      {
        actor,
        client: '127.0.0.1',
        action: 'PATCH /api/v1/clusters/web/backends/a',
        cluster: 'web',
        backend: 'a',
        before: { id: 'a', url: upstream.url, weight: 1, draining: false },
        after: { id: 'a', url: upstream.url, weight: 7, draining: false },
      },
      expect.objectContaining({
        action: 'POST /api/v1/clusters/web/backends',
        backend: 'b',
        before: undefined,
        after: { id: 'b', url: 'http://127.0.0.1:1', weight: 1, draining: false },
      }),
      expect.objectContaining({
        action: 'DELETE /api/v1/clusters/web/backends/b',
        before: { id: 'b', url: 'http://127.0.0.1:1', weight: 1, draining: false },
        after: undefined,
      }),
    ]);
    expect(JSON.stringify(changes)).not.toContain(TOKEN);
  });

  it('serves settings: GET reads, POST with the token writes, a refused value is 400 and no change', async () => {
    const web = createCluster({ name: 'web', backends: ['http://127.0.0.1:1'], health: false });
    defer(() => web.close({ timeoutMs: 0 }));
    const values: Record<string, unknown> = { web: { failure_threshold: 5 } };
    const changes: AdminChange[] = [];
    const base = await serve(
      createAdmin({
        clusters: { web },
        token: TOKEN,
        onChange: (c) => changes.push(c),
        settings: {
          'circuit-breaker': {
            read: (cluster) => values[cluster],
            write: async (cluster, value) => {
              if ((value as { failure_threshold?: unknown }).failure_threshold === 'many')
                throw new Error('failure_threshold: expected a number');
              values[cluster] = value;
            },
          },
        },
      }),
    );
    const path = `${base}/api/v1/clusters/web/circuit-breaker`;
    const answer = async (options?: Parameters<typeof call>[1]) => {
      const response = await call(path, options);
      return { status: response.status, body: response.json() };
    };
    expect(await answer()).toEqual({ status: 200, body: { failure_threshold: 5 } });
    expect((await answer({ method: 'POST', body: { failure_threshold: 9 } })).status).toBe(401);
    expect(await answer({ method: 'POST', body: { failure_threshold: 9 }, token: TOKEN })).toEqual({
      status: 200,
      body: { failure_threshold: 9 },
    });
    expect(await answer({ method: 'POST', body: { failure_threshold: 'many' }, token: TOKEN })).toEqual({
      status: 400,
      body: { error: { code: 'EBADREQUEST', message: 'failure_threshold: expected a number' } },
    });
    expect((await call(`${base}/api/v1/clusters/nope/circuit-breaker`)).status).toBe(404);
    expect((await call(`${base}/api/v1/clusters/web/other-thing`)).status).toBe(404);
    expect(changes).toEqual([
      expect.objectContaining({
        action: 'POST /api/v1/clusters/web/circuit-breaker',
        before: { failure_threshold: 5 },
        after: { failure_threshold: 9 },
      }),
    ]);
  });

  it.each([
    [{ backends: { read: () => 1, write: () => 1 } }, /not "backends"/],
    [{ 'Traffic Split': { read: () => 1, write: () => 1 } }, /path segment/],
    [{ split: { read: () => 1 } }, /settings\.split must have read\(\) and write\(\)/],
  ])('refuses settings %#', (settings, message) => {
    expect(() => createAdmin({ clusters: {}, settings: settings as never })).toThrow(message);
  });
});
