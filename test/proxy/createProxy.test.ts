import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { type Cluster, createCluster } from '../../src/cluster/Cluster.js';
import { RateLimiter } from '../../src/limit/RateLimiter.js';
import { createProxy, type Proxy as McgravityProxy, type ProxyOptions } from '../../src/proxy/createProxy.js';
import { until, within } from '../helpers/async.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { seededRandom } from '../helpers/random.js';
import { rawRequest, statusOfRaw } from '../helpers/raw.js';
import {
  closedPort,
  hangingUpstream,
  resettingUpstream,
  startUpstream,
  type Upstream,
} from '../helpers/upstreams.js';

const defer = cleanupAfterEach();

async function upstream(handler?: http.RequestListener): Promise<Upstream> {
  const server = await startUpstream(handler);
  defer(() => server.close());
  return server;
}

/** An upstream that answers with what it received, as JSON. */
function echo(name = 'echo'): Promise<Upstream> {
  return upstream((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.setHeader('connection', 'keep-alive, x-secret');
      res.setHeader('x-secret', 'hop');
      res.end(
        JSON.stringify({
          name,
          method: req.method,
          url: req.url,
          headers: req.headers,
          body: Buffer.concat(chunks).toString(),
        }),
      );
    });
  });
}

async function proxy(options: ProxyOptions): Promise<{ proxy: McgravityProxy; url: string; port: number }> {
  const p = createProxy(options);
  const server = await p.listen(0);
  defer(() => p.close({ timeoutMs: 500 }));
  const { port } = server.address() as AddressInfo;
  return { proxy: p, url: `http://127.0.0.1:${port}`, port };
}

function cluster(options: Parameters<typeof createCluster>[0]): Cluster {
  const c = createCluster(options);
  defer(() => c.close({ timeoutMs: 500 }));
  return c;
}

describe('createProxy', () => {
  it('forwards method, path, query and body, and strips hop-by-hop headers both ways', async () => {
    const target = await echo();
    const { url } = await proxy({ cluster: { backends: [target.url] } });
    // node:http, because undici refuses to send a Keep-Alive header at all.
    const response = await new Promise<{ headers: http.IncomingHttpHeaders; body: string }>(
      (resolve, reject) => {
        const req = http.request(`${url}/orders/7?expand=items`, {
          method: 'POST',
          headers: {
            'content-type': 'text/plain',
            connection: 'keep-alive, x-drop-me, x-forwarded-for',
            'x-drop-me': 'secret',
            'keep-alive': 'timeout=5',
            'x-keep-me': 'yes',
            'x-forwarded-for': '6.6.6.6',
            host: 'shop.example',
          },
          agent: false,
        });
        req.on('response', (res) => {
          let body = '';
          res.on('data', (chunk) => {
            body += chunk;
          });
          res.on('end', () => resolve({ headers: res.headers, body }));
        });
        req.on('error', reject);
        req.end('two widgets');
      },
    );
    const seen = JSON.parse(response.body) as {
      method: string;
      url: string;
      body: string;
      headers: Record<string, string>;
    };
    expect(seen).toMatchObject({ method: 'POST', url: '/orders/7?expand=items', body: 'two widgets' });
    expect(seen.headers['x-keep-me']).toBe('yes');
    expect(seen.headers['x-drop-me']).toBeUndefined();
    expect(seen.headers['keep-alive']).toBeUndefined();
    // Naming X-Forwarded-For in Connection does not remove ours; the client's own value is not trusted.
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen.headers['x-forwarded-proto']).toBe('http');
    expect(seen.headers['x-forwarded-host']).toBe('shop.example');
    expect(seen.headers.host).toBe('shop.example'); // kept by default
    expect(seen.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(response.headers['x-request-id']).toBe(seen.headers['x-request-id']);
    expect(response.headers['x-secret']).toBeUndefined(); // named in the upstream's Connection
  });

  it('relays an answer head as it came: order, repeated headers and bytes, with its own request id kept', async () => {
    // A backend that writes its head by hand: mixed case, two Set-Cookie and two Link lines, a value
    // in UTF-8 bytes, a request id of its own, and a hop-by-hop header named in Connection.
    const backend = net.createServer((socket) => {
      socket.once('data', () => {
        const head = Buffer.concat([
          Buffer.from(
            'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nSet-Cookie: a=1\r\nX-Trace: one\r\nSet-Cookie: b=2\r\n' +
              'Link: </a>; rel=preload\r\nLink: </b>; rel=preload\r\nX-Request-Id: from-backend\r\n' +
              'Connection: keep-alive, X-Hop\r\nX-Hop: secret\r\nX-Name: ',
            'latin1',
          ),
          Buffer.from('café', 'utf8'),
          Buffer.from('\r\nContent-Length: 2\r\n\r\nok', 'latin1'),
        ]);
        socket.write(head);
      });
    });
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
    defer(() => new Promise((resolve) => backend.close(resolve)));
    const { port } = await proxy({
      cluster: { backends: [`http://127.0.0.1:${(backend.address() as AddressInfo).port}`] },
    });
    const answer = await rawRequest(port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    const lines = answer.split('\r\n\r\n')[0]?.split('\r\n') ?? [];
    expect(lines[0]).toBe('HTTP/1.1 200 OK');
    // Names in lower case (as HTTP/2 has them), everything else as it came.
    expect(lines.slice(1, 10)).toEqual([
      'content-type: text/plain',
      'set-cookie: a=1',
      'x-trace: one',
      'set-cookie: b=2',
      'link: </a>; rel=preload',
      'link: </b>; rel=preload',
      'x-request-id: from-backend',
      `x-name: ${Buffer.from('café', 'utf8').toString('latin1')}`, // the same bytes, read as latin1
      'content-length: 2',
    ]);
    expect(answer.toLowerCase()).not.toContain('x-hop');
    expect(answer.match(/x-request-id/gi)).toHaveLength(1);
    expect(answer.endsWith('\r\n\r\nok')).toBe(true);
  });

  it("lets headers set before the proxy (a middleware) stand, replaced by the upstream's of the same name", async () => {
    const target = await upstream((_req, res) => {
      res.setHeader('set-cookie', ['a=1', 'b=2']);
      res.setHeader('x-frame-options', 'DENY');
      res.end('ok');
    });
    const p = createProxy({ cluster: { backends: [target.url] } });
    defer(() => p.close({ timeoutMs: 500 }));
    const server = http.createServer((req, res) => {
      res.setHeader('access-control-allow-origin', '*');
      res.setHeader('x-frame-options', 'SAMEORIGIN');
      p.handler(req, res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    defer(() => new Promise((resolve) => server.close(resolve)));
    const response = await request(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    await response.body.text();
    expect(response.headers['access-control-allow-origin']).toBe('*');
    expect(response.headers['x-frame-options']).toBe('DENY');
    expect(response.headers['set-cookie']).toEqual(['a=1', 'b=2']);
    expect(response.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('keeps a valid client request id, replaces a bad one, and rewrites Host on request', async () => {
    const target = await echo();
    const { url } = await proxy({ cluster: { backends: [target.url] }, rewriteHost: true, via: true });
    const keep = await request(url, { headers: { 'x-request-id': 'abc-123', host: 'shop.example' } });
    const kept = (await keep.body.json()) as { headers: Record<string, string> };
    expect(kept.headers['x-request-id']).toBe('abc-123');
    expect(kept.headers.host).toBe(`127.0.0.1:${target.port}`);
    expect(kept.headers.via).toBe('1.1 mcgravity');
    expect(keep.headers.via).toBe('1.1 mcgravity');
    const bad = await request(url, { headers: { 'x-request-id': 'evil\u00e9 id' } });
    expect(
      ((await bad.body.json()) as { headers: Record<string, string> }).headers['x-request-id'],
    ).not.toContain('evil');
  });

  it('believes X-Forwarded-For only from trusted proxies', async () => {
    const target = await echo();
    const trusted = await proxy({
      cluster: { backends: [target.url] },
      trustProxy: ['127.0.0.1'],
      forwarded: true,
    });
    const response = await request(trusted.url, {
      headers: {
        'x-forwarded-for': '203.0.113.9',
        'x-forwarded-proto': 'https',
        'x-forwarded-host': 'public.example',
      },
    });
    const seen = ((await response.body.json()) as { headers: Record<string, string> }).headers;
    expect(seen['x-forwarded-for']).toBe('203.0.113.9, 127.0.0.1');
    expect(seen['x-forwarded-proto']).toBe('https');
    expect(seen['x-forwarded-host']).toBe('public.example');
    expect(seen.forwarded).toBe(`for=203.0.113.9;host="127.0.0.1:${trusted.port}";proto=http`);
  });

  it('answers JSON errors: 503 with no upstream, 502 on a refused connection, 404 with no route', async () => {
    const dead = `http://127.0.0.1:${await closedPort()}`;
    const { url } = await proxy({
      routes: [
        { match: { pathPrefix: '/dead' }, cluster: { backends: [dead], outlierDetection: false } },
        { match: { pathPrefix: '/empty' }, cluster: { backends: [], allowEmpty: true } },
      ],
    });
    const refused = await request(`${url}/dead/x`);
    expect(refused.statusCode).toBe(502);
    expect(await refused.body.json()).toMatchObject({
      error: { code: 'EUPSTREAM', requestId: expect.any(String) },
    });
    const empty = await request(`${url}/empty`);
    expect(empty.statusCode).toBe(503);
    expect(await empty.body.json()).toMatchObject({ error: { code: 'ENOUPSTREAM' } });
    const nowhere = await request(`${url}/elsewhere`);
    expect(nowhere.statusCode).toBe(404);
    await nowhere.body.dump();
  });

  it('gives up on a hanging upstream after firstByteMs and retries the GET elsewhere; 504 when all hang', async () => {
    const hanging = await hangingUpstream();
    defer(() => hanging.close());
    const good = await echo('good');
    const { url } = await proxy({
      cluster: {
        backends: [
          { url: hanging.url, id: 'hang' },
          { url: good.url, id: 'good' },
        ],
        balancer: 'round-robin',
      },
      timeouts: { firstByteMs: 300 },
    });
    const first = await request(`${url}/a`);
    expect(first.statusCode).toBe(200);
    expect(((await first.body.json()) as { name: string }).name).toBe('good');
    expect(hanging.requests.length).toBeGreaterThanOrEqual(1);
    const onlyHanging = await proxy({
      cluster: { backends: [hanging.url], retry: { attempts: 1 } },
      timeouts: { firstByteMs: 200 },
    });
    const timedOut = await request(onlyHanging.url);
    expect(timedOut.statusCode).toBe(504);
    expect(await timedOut.body.json()).toMatchObject({ error: { code: 'EUPSTREAMTIMEOUT' } });
  });

  it('does not retry a POST once it was sent, and reports the reset as 502', async () => {
    const reset = await resettingUpstream();
    defer(() => reset.close());
    const good = await echo();
    const { url } = await proxy({
      cluster: {
        backends: [
          { url: reset.url, id: 'reset' },
          { url: good.url, id: 'good' },
        ],
        balancer: 'round-robin',
      },
    });
    const response = await request(url, { method: 'POST', body: 'pay once' });
    expect(response.statusCode).toBe(502);
    await response.body.dump();
    expect(reset.requests).toHaveLength(1);
    expect(good.requests).toHaveLength(0);
  });

  it('refuses bad input with the right status and keeps serving', async () => {
    const target = await echo();
    const { url, port } = await proxy({
      cluster: { backends: [target.url] },
      maxBodyBytes: 1000,
      timeouts: { clientHeadersMs: 300 },
    });
    const both = await rawRequest(
      port,
      'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    );
    expect(statusOfRaw(both)).toBe(400);
    const twoLengths = await rawRequest(
      port,
      'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde',
    );
    expect(statusOfRaw(twoLengths)).toBe(400);
    const huge = await rawRequest(
      port,
      `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20 * 1024)}\r\n\r\n`,
    );
    expect(statusOfRaw(huge)).toBe(431);
    const slowloris = await rawRequest(port, 'GET / HTTP/1.1\r\nHost: x\r\nX-Slow: '); // never finishes its headers
    expect(statusOfRaw(slowloris)).toBe(408);
    const big = await request(url, { method: 'POST', body: 'x'.repeat(5000) });
    expect(big.statusCode).toBe(413);
    expect(await big.body.json()).toMatchObject({ error: { code: 'EBODYTOOLARGE' } });
    const chunkedBig = await request(url, {
      method: 'POST',
      body: Readable.from(
        (async function* () {
          for (let i = 0; i < 10; i++) yield Buffer.alloc(500, 'y');
        })(),
      ),
    }).catch((error: unknown) => error);
    // The proxy answers 413 while the body is still arriving; the client may see that or a reset.
    if (!(chunkedBig instanceof Error)) {
      expect((chunkedBig as { statusCode: number }).statusCode).toBe(413);
      await (chunkedBig as { body: { dump(): Promise<void> } }).body.dump();
    }
    // A //host path stays a path on the configured upstream; an absolute-form target keeps only its path.
    const sneaky = await rawRequest(
      port,
      'GET //evil.example/steal HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    );
    expect(sneaky).toContain('"url":"//evil.example/steal"');
    const absolute = await rawRequest(
      port,
      'GET http://evil.example/other?q=1 HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n',
    );
    expect(absolute).toContain('"url":"/other?q=1"');
    const still = await request(`${url}/ok`);
    expect(still.statusCode).toBe(200);
    await still.body.dump();
  });

  it('answers 408 to a client whose streamed body goes idle', async () => {
    const target = await echo();
    const { port } = await proxy({ cluster: { backends: [target.url] }, timeouts: { idleMs: 300 } });
    const stalled = await rawRequest(
      port,
      'POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n', // …and nothing more
    );
    expect(statusOfRaw(stalled)).toBe(408);
    expect(stalled).toContain('request body went idle');
    expect(stalled).toContain('"code":"EREQUESTTIMEOUT"'); // its own code, not EBADREQUEST's 400
  });

  it('works with HTTP/1.0 clients and Expect: 100-continue', async () => {
    const target = await echo();
    const { port } = await proxy({ cluster: { backends: [target.url] } });
    const old = await rawRequest(port, 'GET /legacy HTTP/1.0\r\nHost: x\r\n\r\n');
    expect(statusOfRaw(old)).toBe(200);
    expect(old).toContain('"url":"/legacy"');
    const continued = await new Promise<string>((resolve, reject) => {
      const req = http.request({
        port,
        method: 'POST',
        path: '/upload',
        headers: { expect: '100-continue', 'content-length': 5 },
      });
      req.on('continue', () => req.end('hello'));
      req.on('response', (res) => {
        let text = '';
        res.on('data', (chunk) => {
          text += chunk;
        });
        res.on('end', () => resolve(text));
      });
      req.on('error', reject);
    });
    expect(JSON.parse(continued)).toMatchObject({ url: '/upload', body: 'hello' });
  });

  it('streams server-sent events as they come, without buffering', async () => {
    let sendNext: () => void = () => {};
    const sse = await upstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write('data: first\n\n');
      sendNext = () => res.end('data: second\n\n');
    });
    const { url } = await proxy({ cluster: { backends: [sse.url] } });
    const response = await request(url);
    const events: string[] = [];
    response.body.on('data', (chunk: Buffer) => events.push(chunk.toString()));
    await until(() => events.join('').includes('first'));
    expect(events.join('')).not.toContain('second'); // the first event arrived while the upstream was still open
    sendNext();
    await until(() => events.join('').includes('second'));
  });

  it('cuts an answer whose upstream goes idle mid-body, and not one that keeps moving', async () => {
    let upstreamClosed = false;
    const target = await upstream((req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      if (req.url === '/stall') {
        res.write('data: one\n\n'); // …and nothing more
        res.on('close', () => {
          upstreamClosed = true;
        });
        return;
      }
      let ticks = 0;
      const timer = setInterval(() => {
        res.write(`data: tick ${++ticks}\n\n`);
        if (ticks === 6) {
          clearInterval(timer);
          res.end();
        }
      }, 100);
    });
    const { url } = await proxy({ cluster: { backends: [target.url] }, timeouts: { idleMs: 300 } });
    // Six ticks 100 ms apart: 600 ms in all, twice the idle timeout, never idle for 300 ms.
    const moving = await request(`${url}/ticks`);
    expect(await moving.body.text()).toContain('data: tick 6');
    const stalled = await request(`${url}/stall`);
    expect(stalled.statusCode).toBe(200);
    await expect(stalled.body.text()).rejects.toThrow(); // cut: the chunked body never ends
    await until(() => upstreamClosed); // and the upstream request was aborted
  });

  it('cuts a client that stops reading once the answer has stalled for the idle timeout', async () => {
    const chunk = Buffer.alloc(64 * 1024, 'x');
    const total = 512; // 32 MiB: more than the socket buffers on the way hold
    let upstreamClosed = false;
    const target = await upstream((_req, res) => {
      res.writeHead(200, { 'content-length': String(total * chunk.length) });
      res.on('close', () => {
        upstreamClosed = true;
      });
      let sent = 0;
      const more = () => {
        while (sent < total) {
          sent++;
          if (!res.write(chunk)) {
            res.once('drain', more);
            return;
          }
        }
        res.end();
      };
      more();
    });
    const { port } = await proxy({ cluster: { backends: [target.url] }, timeouts: { idleMs: 300 } });
    const client = net.connect(port, '127.0.0.1');
    defer(async () => client.destroy());
    client.write('GET /big HTTP/1.1\r\nHost: x\r\n\r\n');
    client.pause(); // reads nothing: backpressure stalls the relay
    await within(() => upstreamClosed, 5000, 'upstream request aborted'); // the proxy gave up on the client
    let received = 0;
    client.on('data', (data: Buffer) => {
      received += data.length;
    });
    const closed = new Promise((resolve) => client.on('close', resolve));
    client.resume();
    await closed;
    expect(received).toBeLessThan(total * chunk.length); // cut, not completed
  });

  it('turns the idle timeout off with idleMs: 0, for an upload and an answer that both pause', async () => {
    const target = await upstream((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => {
        body += chunk;
      });
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write(`got ${body};`);
        setTimeout(() => res.end(' and more'), 60); // a pause that any sweep would have seen
      });
    });
    const { port } = await proxy({ cluster: { backends: [target.url] }, timeouts: { idleMs: 0 } });
    const client = net.connect(port, '127.0.0.1');
    defer(async () => client.destroy());
    let text = '';
    client.on('data', (data: Buffer) => {
      text += data;
    });
    client.write('POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
    setTimeout(() => client.write('0\r\n\r\n'), 60); // the upload pauses too
    await within(() => text.endsWith('0\r\n\r\n'), 5000, 'the whole chunked answer');
    expect(statusOfRaw(text)).toBe(200);
    expect(text).toContain('got hello;');
    expect(text).toContain(' and more');
  });

  it('keeps a client on one endpoint by cookie across 1,000 requests, and spreads clients', async () => {
    const servers = await Promise.all(['a', 'b', 'c'].map((name) => echo(name)));
    const { url } = await proxy({
      cluster: { backends: servers.map((s, i) => ({ url: s.url, id: 'abc'[i] as string })) },
      sessionAffinity: { cookie: 'mcg' },
    });
    const first = await request(url);
    const cookie = String(first.headers['set-cookie']).split(';')[0] as string;
    const home = ((await first.body.json()) as { name: string }).name;
    expect(cookie).toMatch(/^mcg=[\w-]{16}$/);
    expect(cookie).not.toContain('127.0.0.1');
    for (let i = 0; i < 1000; i++) {
      const response = await request(url, { headers: { cookie } });
      expect(((await response.body.json()) as { name: string }).name).toBe(home);
      expect(response.headers['set-cookie']).toBeUndefined();
    }
    const homes = new Set<string>();
    for (let i = 0; i < 30; i++)
      homes.add(((await (await request(url)).body.json()) as { name: string }).name);
    expect(homes.size).toBe(3);
  });

  it('keeps a client on one endpoint by header, and splits 10 % to a canary', async () => {
    const [stable, canary] = await Promise.all([echo('stable'), echo('canary')]);
    const stableCluster = cluster({ name: 'stable', backends: [stable.url] });
    const canaryCluster = cluster({ name: 'canary', backends: [canary.url] });
    const { url } = await proxy({
      routes: [
        {
          split: [
            { cluster: stableCluster, weight: 90 },
            { cluster: canaryCluster, weight: 10, headers: { 'x-canary': 'always' } },
          ],
        },
      ],
      random: seededRandom(42),
    });
    let canaryCount = 0;
    for (let i = 0; i < 1000; i++) {
      const response = await request(url);
      if (((await response.body.json()) as { name: string }).name === 'canary') canaryCount++;
    }
    expect(canaryCount).toBeGreaterThan(70); // 100 expected; 3 standard deviations is ±28
    expect(canaryCount).toBeLessThan(130);
    const pinned = await request(url, { headers: { 'x-canary': 'always' } });
    expect(((await pinned.body.json()) as { name: string }).name).toBe('canary');
  });

  it('rate limits per client with 429, Retry-After and RateLimit headers; bypass keys pass', async () => {
    const target = await echo();
    const limiter = new RateLimiter({ limit: 2, windowMs: '1m' });
    const { url } = await proxy({
      cluster: { backends: [target.url] },
      rateLimit: { limiter, key: 'header:x-client-id', bypass: ['internal'] },
    });
    const statuses: number[] = [];
    let last: Awaited<ReturnType<typeof request>> | undefined;
    for (let i = 0; i < 3; i++) {
      last = await request(url, { headers: { 'x-client-id': 'c1' } });
      statuses.push(last.statusCode);
      if (i < 2) await last.body.dump();
    }
    expect(statuses).toEqual([200, 200, 429]);
    expect(last?.headers['retry-after']).toBe('30');
    expect(last?.headers['ratelimit-remaining']).toBe('0');
    expect(await last?.body.json()).toMatchObject({ error: { code: 'ERATELIMITED' } });
    for (let i = 0; i < 3; i++) {
      const internal = await request(url, { headers: { 'x-client-id': 'internal' } });
      expect(internal.statusCode).toBe(200);
      await internal.body.dump();
    }
  });

  it('routes by path prefix, host and method, stripping the prefix when asked', async () => {
    const [api, admin] = await Promise.all([echo('api'), echo('admin')]);
    const { url } = await proxy({
      routes: [
        {
          match: { pathPrefix: '/admin', host: '*.example.com', method: ['GET'] },
          cluster: { backends: [admin.url] },
        },
        { match: { pathPrefix: '/api/' }, cluster: { backends: [api.url] }, stripPrefix: true },
      ],
    });
    const adminHit = await request(`${url}/admin/users`, { headers: { host: 'ops.example.com' } });
    expect(await adminHit.body.json()).toMatchObject({ name: 'admin', url: '/admin/users' });
    const wrongHost = await request(`${url}/admin/users`, { headers: { host: 'example.org' } });
    expect(wrongHost.statusCode).toBe(404);
    await wrongHost.body.dump();
    const apiHit = await request(`${url}/api/v1/items?x=1`);
    expect(await apiHit.body.json()).toMatchObject({ name: 'api', url: '/v1/items?x=1' });
    const bare = await request(`${url}/api`);
    expect(await bare.body.json()).toMatchObject({ name: 'api', url: '/' });
  });

  it('applies per-route first-byte timeouts', async () => {
    const hanging = await hangingUpstream();
    defer(() => hanging.close());
    const { url } = await proxy({
      routes: [
        {
          match: { pathPrefix: '/quick' },
          cluster: { backends: [hanging.url], retry: false },
          timeouts: { firstByteMs: 150 },
        },
        { cluster: { backends: [hanging.url], retry: false } },
      ],
      timeouts: { firstByteMs: 60_000 },
    });
    const quick = await request(`${url}/quick`);
    expect(quick.statusCode).toBe(504);
    await quick.body.dump();
  });

  it('cuts the client stream when the upstream resets mid-response, and does not retry', async () => {
    const breaking = await upstream((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first half, ');
      setImmediate(() => req.socket.resetAndDestroy());
    });
    const { url } = await proxy({ cluster: { backends: [breaking.url], retry: { attempts: 3 } } });
    const response = await request(url);
    expect(response.statusCode).toBe(200); // the headers had already gone out
    await expect(response.body.text()).rejects.toThrow(); // and the body is cut, not ended as if whole
    expect(breaking.requests).toHaveLength(1);
  });

  it('closes gracefully: in-flight requests finish, new connections are refused', async () => {
    let finish: () => void = () => {};
    const slow = await upstream((_req, res) => {
      finish = () => res.end('finished');
    });
    const p = createProxy({ cluster: { backends: [slow.url] } });
    const server = await p.listen(0);
    const port = (server.address() as AddressInfo).port;
    const inflight = request(`http://127.0.0.1:${port}/`);
    await until(() => slow.requests.length === 1);
    const closing = p.close({ timeoutMs: 5000 });
    await until(() => !server.listening);
    await expect(request(`http://127.0.0.1:${port}/`)).rejects.toThrow();
    finish();
    const response = await inflight;
    expect(await response.body.text()).toBe('finished');
    await closing;
    expect(p.inflight).toBe(0);
  });

  it('answers 500 and keeps serving when a user callback throws', async () => {
    const target = await echo();
    let throwing = true;
    const limiter = new RateLimiter({ limit: 100, windowMs: '1m' });
    const { url } = await proxy({
      cluster: { backends: [target.url] },
      rateLimit: {
        limiter,
        key: () => {
          if (throwing) throw new Error('bug in key function');
          return 'k';
        },
      },
    });
    const failed = await request(url);
    expect(failed.statusCode).toBe(500);
    expect(await failed.body.json()).toMatchObject({ error: { code: 'EINTERNAL' } });
    throwing = false;
    const ok = await request(url);
    expect(ok.statusCode).toBe(200);
    await ok.body.dump();
  });

  it.each([
    [{}, /needs a cluster or routes/],
    [{ cluster: { backends: ['http://127.0.0.1:1'] }, routes: [] }, /either cluster or routes/],
    [
      { routes: [{ match: { path: '/x' }, cluster: { backends: ['http://127.0.0.1:1'] } }] },
      /routes\[0\]\.match: unknown option "path"/,
    ],
    [
      { cluster: { backends: ['http://127.0.0.1:1'] }, trustProxy: ['not-an-ip'] },
      /not an IP address or CIDR/,
    ],
    [{ cluster: { backends: ['http://127.0.0.1:1'] }, sessionAffinity: 'sticky' }, /sessionAffinity must be/],
    [
      { cluster: { backends: ['http://127.0.0.1:1'] }, timeouts: { firstByte: 5 } },
      /timeouts: unknown option "firstByte"/,
    ],
    [
      { cluster: { backends: ['http://127.0.0.1:1'] }, rateLimit: { limiter: {} } },
      /rateLimit.limiter must be a RateLimiter/,
    ],
    [
      { routes: [{ cluster: { backends: ['http://127.0.0.1:1'] }, timeouts: { connectMs: 1 } }] },
      /routes\[0\]\.timeouts: unknown option "connectMs"/,
    ],
  ])('rejects %j', (options, message) => {
    expect(() => createProxy(options as never)).toThrow(message);
  });
});
