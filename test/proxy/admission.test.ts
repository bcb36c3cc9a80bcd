import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { admit, isRefusal, NO_ROUTE } from '../../src/proxy/admission.js';
import { createProxy } from '../../src/proxy/createProxy.js';
import { resolveProxyOptions } from '../../src/proxy/options.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { rawRequest, statusOfRaw } from '../helpers/raw.js';
import { startUpstream } from '../helpers/upstreams.js';

const defer = cleanupAfterEach();

function fakeRequest(url: string, rawHeaders: string[] = ['Host', 'x']): IncomingMessage {
  const headers: Record<string, string> = {};
  for (let i = 0; i < rawHeaders.length; i += 2)
    headers[(rawHeaders[i] as string).toLowerCase()] ??= rawHeaders[i + 1] as string;
  return {
    url,
    method: 'GET',
    headers,
    rawHeaders,
    socket: { remoteAddress: '127.0.0.1' },
  } as unknown as IncomingMessage;
}

describe('admission', () => {
  const settings = resolveProxyOptions({
    routes: [{ match: { pathPrefix: '/api' }, cluster: { backends: ['http://127.0.0.1:1'] } }],
  });
  defer(() => Promise.all(settings.owned.map((cluster) => cluster.close())));

  it.each([
    ['closing', '/api', undefined, true, 'ECLOSED'],
    ['two Host headers', '/api', ['Host', 'a', 'host', 'b'], false, 'EBADREQUEST'],
    ['a target that is neither a path nor absolute', 'example.com:443', undefined, false, 'EBADREQUEST'],
    ['no route', '/other', undefined, false, 'ENOUPSTREAM'],
  ])('refuses %s', (_name, url, rawHeaders, closing, code) => {
    const result = admit(fakeRequest(url, rawHeaders), settings, closing);
    expect(isRefusal(result) && result.code).toBe(code);
  });

  it('hands an unrouted request on as NO_ROUTE, and admits the rest with route, path and client', () => {
    expect(admit(fakeRequest('/other'), settings, false)).toBe(NO_ROUTE);
    const admitted = admit(fakeRequest('http://evil.example/api/x?y=1'), settings, false);
    expect(isRefusal(admitted)).toBe(false);
    expect(admitted).toMatchObject({ path: '/api/x?y=1', from: { client: '127.0.0.1' } });
  });

  it('answers two Host headers with 400 (RFC 9112 §3.2) on the wire and never forwards them', async () => {
    const arrived: string[] = [];
    const backend = await startUpstream((req, res) => {
      arrived.push(req.url ?? '');
      res.end();
    });
    defer(() => backend.close());
    const proxy = createProxy({ cluster: { backends: [backend.url] } });
    const port = ((await proxy.listen(0)).address() as AddressInfo).port;
    defer(() => proxy.close({ timeoutMs: 200 }));
    const response = await rawRequest(
      port,
      'GET /twice HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n',
    );
    expect(statusOfRaw(response)).toBe(400);
    expect(response).toContain('"code":"EBADREQUEST"');
    expect(response).toContain('more than one Host header');
    expect(arrived).toEqual([]);
  });
});
