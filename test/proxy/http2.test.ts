/**
 * HTTP/2 in front of the proxy, with a real `node:http2` client: over TLS (ALPN `h2`, with HTTP/1.1
 * still served on the same port) and in cleartext with prior knowledge (h2c), to HTTP/1.1 backends.
 * Many streams on one connection, headers translated both ways, bodies without a length, trailers,
 * stream resets that cancel the upstream request, the stream and header limits, and a close that
 * lets streams finish.
 */
import type http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { createCluster } from '../../src/cluster/Cluster.js';
import { createProxy, type Proxy as ProxyInstance, type ProxyOptions } from '../../src/proxy/createProxy.js';
import { until, within } from '../helpers/async.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { type Certificate, selfSigned, tlsSkipReason } from '../helpers/tls.js';
import { startHttp2Upstream, startUpstream, type Upstream } from '../helpers/upstreams.js';

const defer = cleanupAfterEach({ ignoreErrors: true });
const skip = tlsSkipReason();
let certificate: Certificate | undefined;
const tls = () => {
  certificate ??= selfSigned();
  return { cert: certificate.cert, key: certificate.key };
};

async function upstream(handler: http.RequestListener): Promise<Upstream> {
  const server = await startUpstream(handler);
  defer(() => server.close());
  return server;
}

/** Answers with its name and what it was sent. */
const echo = (name: string) =>
  upstream((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ name, method: req.method, url: req.url, headers: req.headers, body }));
    });
  });

async function proxied(
  options: ProxyOptions,
): Promise<{ proxy: ProxyInstance; origin: string; port: number }> {
  const proxy = createProxy(options);
  const server = await proxy.listen(0);
  defer(() => proxy.close({ timeoutMs: 500 }));
  const port = (server.address() as AddressInfo).port;
  return { proxy, port, origin: `${options.tls === undefined ? 'http' : 'https'}://127.0.0.1:${port}` };
}

/** An h2c backend answering its name and the method, closed after the test. */
async function h2cBackend(
  name: string,
  handler?: Parameters<typeof startHttp2Upstream>[1],
): Promise<{ url: string }> {
  const backend = await startHttp2Upstream(name, handler);
  defer(() => backend.close());
  return backend;
}

function connect(origin: string): http2.ClientHttp2Session {
  const session = http2.connect(origin, { rejectUnauthorized: false });
  session.on('error', () => {});
  defer(async () => session.destroy());
  return session;
}

interface Answer {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: string;
  trailers: http2.IncomingHttpHeaders | undefined;
}

function send(
  session: http2.ClientHttp2Session,
  headers: http2.OutgoingHttpHeaders,
  body?: string | string[],
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, { endStream: body === undefined });
    let status = 0;
    let responseHeaders: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders | undefined;
    let text = '';
    stream.on('response', (h) => {
      status = Number(h[':status']);
      responseHeaders = h;
    });
    stream.on('trailers', (t) => {
      trailers = t;
    });
    stream.setEncoding('utf8').on('data', (chunk) => {
      text += chunk;
    });
    stream.on('end', () => resolve({ status, headers: responseHeaders, body: text, trailers }));
    stream.on('error', reject);
    if (body !== undefined) {
      for (const part of Array.isArray(body) ? body : [body]) stream.write(part);
      stream.end();
    }
  });
}

describe.skipIf(skip !== undefined)(`HTTP/2 in front${skip === undefined ? '' : ` (${skip})`}`, () => {
  it('serves 1,000 requests over 100 concurrent streams on one TLS connection, spread over the backends', async () => {
    const backends = await Promise.all(['a', 'b', 'c'].map(echo));
    const { origin } = await proxied({
      cluster: { backends: backends.map((b) => b.url), balancer: 'round-robin' },
      tls: tls(),
    });
    const session = connect(origin);
    const served = new Map<string, number>();
    let next = 0;
    let failures = 0;
    const worker = async () => {
      while (next < 1000) {
        const i = next++;
        const answer = await send(session, { ':path': `/items/${i}?q=${i}` });
        if (answer.status !== 200) failures++;
        const { name, url } = JSON.parse(answer.body) as { name: string; url: string };
        expect(url).toBe(`/items/${i}?q=${i}`);
        served.set(name, (served.get(name) ?? 0) + 1);
      }
    };
    await Promise.all(Array.from({ length: 100 }, worker));
    expect(failures).toBe(0);
    expect([...served.values()].reduce((a, b) => a + b)).toBe(1000);
    expect([...served.keys()].sort()).toEqual(['a', 'b', 'c']);
    for (const count of served.values()) expect(count).toBeGreaterThan(300); // round robin: about a third each
    expect(session.socket).toBeDefined(); // one connection carried them all
  });

  it('translates headers both ways: :authority to Host, no pseudo or connection headers upstream or back', async () => {
    const backend = await upstream((req, res) => {
      res.writeHead(200, {
        'x-seen': JSON.stringify(req.headers),
        connection: 'keep-alive',
        'keep-alive': 'timeout=5',
      });
      res.end('ok');
    });
    const { origin } = await proxied({ cluster: { backends: [backend.url] }, tls: tls() });
    const answer = await send(connect(origin), {
      ':path': '/x',
      ':authority': 'api.example:8443',
      'x-custom': '1',
    });
    expect(answer.status).toBe(200);
    const seen = JSON.parse(String(answer.headers['x-seen'])) as Record<string, string>;
    expect(seen.host).toBe('api.example:8443');
    expect(seen['x-forwarded-host']).toBe('api.example:8443');
    expect(seen['x-forwarded-proto']).toBe('https');
    expect(seen['x-custom']).toBe('1');
    expect(Object.keys(seen).filter((name) => name.startsWith(':'))).toEqual([]);
    expect(answer.headers.connection).toBeUndefined();
    expect(answer.headers['keep-alive']).toBeUndefined();
  });

  it('still serves HTTP/1.1 clients on the same TLS port', async () => {
    const backend = await echo('a');
    const { port } = await proxied({ cluster: { backends: [backend.url] }, tls: tls() });
    const body = await new Promise<string>((resolve, reject) => {
      https
        .get({ host: '127.0.0.1', port, path: '/h1', rejectUnauthorized: false }, (res) => {
          expect(res.httpVersion).toBe('1.1');
          let text = '';
          res.setEncoding('utf8').on('data', (chunk) => {
            text += chunk;
          });
          res.on('end', () => resolve(text));
        })
        .on('error', reject);
    });
    expect(JSON.parse(body)).toMatchObject({ name: 'a', url: '/h1' });
  });

  it('serves cleartext HTTP/2 with prior knowledge (h2c)', async () => {
    const backend = await echo('a');
    const { origin } = await proxied({ cluster: { backends: [backend.url] }, http2: { cleartext: true } });
    const answer = await send(connect(origin), { ':path': '/plain', ':method': 'GET' });
    expect(JSON.parse(answer.body)).toMatchObject({
      name: 'a',
      url: '/plain',
      headers: { 'x-forwarded-proto': 'http' },
    });
  });

  it('streams a request body of unknown length upstream, and relays trailers back', async () => {
    const backend = await upstream((req, res) => {
      let size = 0;
      req.on('data', (chunk: Buffer) => {
        size += chunk.length;
      });
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum' });
        res.write(`received ${size} bytes`);
        res.addTrailers({ 'x-checksum': String(size) });
        res.end();
      });
    });
    const { origin } = await proxied({ cluster: { backends: [backend.url] }, tls: tls() });
    const parts = Array.from({ length: 50 }, () => 'x'.repeat(100_000));
    const answer = await send(connect(origin), { ':path': '/upload', ':method': 'POST' }, parts);
    expect(answer.body).toBe('received 5000000 bytes');
    expect(answer.trailers?.['x-checksum']).toBe('5000000');
  });

  it('cancels the upstream request when the client resets its stream', async () => {
    let aborted = false;
    let arrived = false;
    const backend = await upstream((req) => {
      arrived = true;
      req.on('close', () => {
        aborted = true;
      });
    });
    const cluster = createCluster({ backends: [backend.url] });
    defer(() => cluster.close({ timeoutMs: 100 }));
    const { origin } = await proxied({ cluster, tls: tls() });
    const stream = connect(origin).request({ ':path': '/slow' });
    stream.on('error', () => {});
    await within(() => arrived, 2000, 'the request upstream');
    stream.close(http2.constants.NGHTTP2_CANCEL);
    await within(() => aborted, 2000, 'the upstream request aborted');
    await until(() => cluster.stats().inflight === 0);
  });

  it('answers its own errors over HTTP/2 as JSON with the status, and no Connection header', async () => {
    const { origin } = await proxied({ cluster: { backends: [], allowEmpty: true }, tls: tls() });
    const answer = await send(connect(origin), { ':path': '/' });
    expect(answer.status).toBe(503);
    expect(JSON.parse(answer.body)).toMatchObject({ error: { code: 'ENOUPSTREAM' } });
    expect(answer.headers.connection).toBeUndefined();
  });

  it('advertises its stream limit, and refuses a header list over its limit', async () => {
    const backend = await echo('a');
    const { origin } = await proxied({
      cluster: { backends: [backend.url] },
      tls: tls(),
      http2: { maxConcurrentStreams: 10, maxHeaderListBytes: 4096 },
    });
    const session = connect(origin);
    await new Promise((resolve) => session.once('remoteSettings', resolve));
    expect(session.remoteSettings.maxConcurrentStreams).toBe(10);
    expect(session.remoteSettings.maxHeaderListSize).toBe(4096);
    const big = send(connect(origin), { ':path': '/', 'x-big': 'y'.repeat(8000) });
    await expect(big.then((a) => a.status))
      .resolves.toBe(431)
      .catch(async () => {
        await expect(big).rejects.toThrow(); // or the stream is refused outright
      });
  });

  it('closes gracefully: streams in flight finish, and the client is told to go away', async () => {
    let release: (() => void) | undefined;
    const backend = await upstream((_req, res) => {
      release = () => res.end('finished');
    });
    const { proxy, origin } = await proxied({ cluster: { backends: [backend.url] }, tls: tls() });
    const session = connect(origin);
    let goaway = false;
    session.on('goaway', () => {
      goaway = true;
    });
    const pending = send(session, { ':path': '/long' });
    await within(() => release !== undefined, 2000, 'the request upstream');
    const closed = proxy.close({ timeoutMs: 5000 });
    await within(() => goaway, 2000, 'GOAWAY');
    release?.();
    expect((await pending).body).toBe('finished');
    await closed;
  });

  it('sends 1,000 requests from one client connection to h2c backends as streams over few connections', async () => {
    const backends = await Promise.all(['a', 'b'].map((name) => h2cBackend(name)));
    const cluster = createCluster({
      backends: backends.map((b) => b.url),
      balancer: 'least-request',
      pool: { protocol: 'h2c' },
    });
    defer(() => cluster.close({ timeoutMs: 100 }));
    const { origin } = await proxied({ cluster, tls: tls() });
    const session = connect(origin);
    const served = new Map<string, number>();
    let next = 0;
    const failures: string[] = [];
    const worker = async () => {
      while (next < 1000) {
        const i = next++;
        const answer = await send(
          session,
          { ':path': `/n/${i}`, ':method': i % 2 === 0 ? 'GET' : 'POST' },
          i % 2 === 0 ? undefined : `body ${i}`,
        );
        if (answer.status !== 200) failures.push(`${answer.status} ${answer.body}`);
        const [name] = answer.body.split(' ');
        served.set(name as string, (served.get(name as string) ?? 0) + 1);
      }
    };
    await Promise.all(Array.from({ length: 100 }, worker));
    expect(failures).toEqual([]);
    expect([...served.keys()].sort()).toEqual(['a', 'b']);
    for (const count of served.values()) expect(count).toBeGreaterThan(200);
    for (const endpoint of cluster.stats().endpoints)
      expect(endpoint.pool.connectionsOpened).toBeLessThanOrEqual(2);
  });

  it('loses no request when an h2c backend sends GOAWAY under load', async () => {
    let served = 0;
    const backends = await Promise.all(
      ['a', 'b'].map((name) =>
        h2cBackend(name, (req, res) => {
          let body = '';
          req.setEncoding('utf8').on('data', (chunk) => {
            body += chunk;
          });
          req.on('end', () => {
            if (++served % 50 === 0) req.stream.session?.close(); // a graceful restart, now and then
            setTimeout(() => res.end(`${name} ${req.method} ${body}`), 1);
          });
        }),
      ),
    );
    const cluster = createCluster({ backends: backends.map((b) => b.url), pool: { protocol: 'h2c' } });
    defer(() => cluster.close({ timeoutMs: 100 }));
    const { origin } = await proxied({ cluster, tls: tls() });
    const session = connect(origin);
    let next = 0;
    const failures: string[] = [];
    const worker = async () => {
      while (next < 1000) {
        const method = next++ % 2 === 0 ? 'GET' : 'POST';
        const answer = await send(
          session,
          { ':path': '/', ':method': method },
          method === 'POST' ? 'data' : undefined,
        );
        // A request sent again after a refusal carries its whole body, not what was left of it.
        const expected = method === 'POST' ? `${method} data` : `${method} `;
        if (answer.status !== 200 || !answer.body.endsWith(expected))
          failures.push(`${answer.status} ${answer.body}`);
      }
    };
    await Promise.all(Array.from({ length: 32 }, worker));
    expect(failures).toEqual([]);
    const resent = cluster.stats().endpoints.reduce((sum, e) => sum + e.pool.resent, 0);
    const opened = cluster.stats().endpoints.reduce((sum, e) => sum + e.pool.connectionsOpened, 0);
    expect(opened).toBeGreaterThan(10); // the GOAWAYs really closed connections under load
    expect(resent).toBeGreaterThan(0); // streams refused by a GOAWAY were sent again, not failed
  });

  it('refuses http2 options that cannot work', () => {
    expect(() => createProxy({ cluster: { backends: ['http://127.0.0.1:1'] }, http2: true })).toThrow(
      /http2 needs tls \(HTTP\/2 over TLS\), or cleartext: true/,
    );
    expect(() =>
      createProxy({
        cluster: { backends: ['http://127.0.0.1:1'] },
        tls: { cert: 'x', key: 'y' },
        http2: { cleartext: true },
      }),
    ).toThrow(/http2.cleartext and tls exclude each other/);
    expect(() =>
      createProxy({
        cluster: { backends: ['http://127.0.0.1:1'] },
        http2: { cleartext: true, maxStreams: 5 } as never,
      }),
    ).toThrow(/maxStreams/);
    expect(() =>
      createProxy({
        cluster: { backends: ['http://127.0.0.1:1'] },
        http2: { cleartext: true, maxConcurrentStreams: 0 },
      }),
    ).toThrow(/http2.maxConcurrentStreams/);
  });
});
