/**
 * Hooks and rewrites: onRequest, onResponse and onError as http-proxy-middleware users expect them,
 * pathRewrite, and a backend URL's path as a prefix of every forwarded path.
 */
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { createProxy, type ProxyOptions } from '../../src/proxy/createProxy.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { closedPort, startUpstream } from '../helpers/upstreams.js';

const defer = cleanupAfterEach();

async function echoBackend() {
  const backend = await startUpstream((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ method: req.method, url: req.url, tenant: req.headers['x-tenant'] ?? null }));
  });
  defer(() => backend.close());
  return backend;
}

async function proxied(options: ProxyOptions) {
  const proxy = createProxy(options);
  const port = ((await proxy.listen(0)).address() as AddressInfo).port;
  defer(() => proxy.close({ timeoutMs: 100 }));
  return `http://127.0.0.1:${port}`;
}

describe('proxy hooks', () => {
  it('onRequest adds a header and rewrites the path; onResponse changes status and headers', async () => {
    const backend = await echoBackend();
    const base = await proxied({
      cluster: { backends: [backend.url] },
      onRequest: (req, upstream) => {
        upstream.headers['x-tenant'] = 'acme';
        upstream.path = upstream.path.replace(/^\/old\//, '/new/');
        if (req.headers['x-method'] === 'HEAD-TO-GET') upstream.method = 'GET';
      },
      onResponse: (_req, _res, upstream) => {
        upstream.statusCode = 203;
        upstream.headers['x-served-by'] = upstream.endpoint.id;
      },
    });
    const response = await request(`${base}/old/items?x=1`);
    expect(response.statusCode).toBe(203);
    expect(response.headers['x-served-by']).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(await response.body.json()).toEqual({ method: 'GET', url: '/new/items?x=1', tenant: 'acme' });
  });

  it('onError answers an upstream failure its own way; left alone, the JSON error goes out', async () => {
    const dead = `http://127.0.0.1:${await closedPort()}`;
    const seen: string[] = [];
    const base = await proxied({
      cluster: { backends: [dead], retry: false },
      onError: (req, res, error) => {
        seen.push(`${error.code} ${error.status}`);
        if (req.url === '/custom') {
          res.writeHead(503, { 'content-type': 'text/plain' });
          res.end('down for maintenance');
        }
      },
    });
    const custom = await request(`${base}/custom`);
    expect([custom.statusCode, await custom.body.text()]).toEqual([503, 'down for maintenance']);
    const plain = await request(`${base}/plain`);
    expect(plain.statusCode).toBe(502);
    expect(await plain.body.json()).toMatchObject({ error: { code: 'EUPSTREAM' } });
    expect(seen).toEqual(['EUPSTREAM 502', 'EUPSTREAM 502']);
  });

  it('rewrites paths by prefix (longest first) or by function, after stripPrefix', async () => {
    const backend = await echoBackend();
    const byMap = await proxied({
      routes: [{ match: { pathPrefix: '/svc' }, stripPrefix: true, cluster: { backends: [backend.url] } }],
      pathRewrite: { '/v1/': '/api/', '/v1/admin/': '/internal/' },
    });
    const urlOf = async (url: string) => ((await (await request(url)).body.json()) as { url: string }).url;
    expect(await urlOf(`${byMap}/svc/v1/users`)).toBe('/api/users');
    expect(await urlOf(`${byMap}/svc/v1/admin/x`)).toBe('/internal/x');
    expect(await urlOf(`${byMap}/svc/other`)).toBe('/other');
    const byFunction = await proxied({
      cluster: { backends: [backend.url] },
      pathRewrite: (path) => path.toLowerCase(),
    });
    expect(await urlOf(`${byFunction}/MiXeD`)).toBe('/mixed');
  });

  it("puts a backend URL's path before every forwarded path", async () => {
    const backend = await echoBackend();
    const base = await proxied({ cluster: { backends: [`${backend.url}/api/v2/`] } });
    const response = await request(`${base}/users?page=2`);
    expect(((await response.body.json()) as { url: string }).url).toBe('/api/v2/users?page=2');
  });

  it.each([
    [{ onRequest: 'yes' }, /onRequest must be a function/],
    [{ pathRewrite: { v1: '/api' } }, /pathRewrite maps path prefixes to paths/],
    [{ pathRewrite: 3 }, /pathRewrite must be an object of prefixes or a function/],
  ])('refuses %j', (options, message) => {
    expect(() =>
      createProxy({ cluster: { backends: ['http://127.0.0.1:1'] }, ...(options as object) }),
    ).toThrow(message);
  });
});
