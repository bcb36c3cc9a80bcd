import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { createProxy } from '../../src/proxy/createProxy.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { rawRequest } from '../helpers/raw.js';
import { startUpstream } from '../helpers/upstreams.js';

const defer = cleanupAfterEach();

async function proxyTo(onRequest: (method: string, url: string) => void) {
  const backend = await startUpstream((req, res) => {
    onRequest(req.method ?? '', req.url ?? '');
    req.resume();
    req.on('end', () => res.end(req.url));
  });
  defer(() => backend.close());
  const proxy = createProxy({ cluster: { backends: [backend.url] } });
  const server = await proxy.listen(0);
  defer(() => proxy.close({ timeoutMs: 200 }));
  return (server.address() as AddressInfo).port;
}

describe('pipelined requests', () => {
  it('reach the backend in order once a request that is not safe is among them (GET, GET, POST, GET)', async () => {
    const arrived: string[] = [];
    const port = await proxyTo((method, url) => arrived.push(`${method} ${url}`));
    const response = await rawRequest(
      port,
      'GET /p1 HTTP/1.1\r\nHost: x\r\n\r\n' +
        'GET /p2 HTTP/1.1\r\nHost: x\r\n\r\n' +
        'POST /p3 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello' +
        'GET /p4 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    );
    expect(arrived).toEqual(['GET /p1', 'GET /p2', 'POST /p3', 'GET /p4']);
    // The answers come back in order too (Node's server keeps that).
    expect(response.match(/\/p\d/g)).toEqual(['/p1', '/p2', '/p3', '/p4']);
  });

  it('keeps processing safe requests in parallel', async () => {
    const arrived: string[] = [];
    const port = await proxyTo((_method, url) => arrived.push(url));
    const requests = Array.from({ length: 5 }, (_, i) => `GET /s${i} HTTP/1.1\r\nHost: x\r\n\r\n`).join('');
    const response = await rawRequest(
      port,
      `${requests}GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
    );
    expect(arrived.sort()).toEqual(['/last', '/s0', '/s1', '/s2', '/s3', '/s4']);
    expect(response.match(/HTTP\/1\.1 200/g)).toHaveLength(6);
  });
});
