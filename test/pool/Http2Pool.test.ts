/**
 * HTTP/2 to backends over node:http2 sessions, against real `node:http2` servers on loopback: many
 * streams on few connections, bodies and trailers both ways, the backend's stream limit respected,
 * a GOAWAY that lets accepted streams finish and has refused ones sent again, and both of undici's
 * handler interfaces (request() and fetch() go through it too).
 */
import http2 from 'node:http2';
import { Readable, Writable } from 'node:stream';
import { fetch } from 'undici';
import { describe, expect, it } from 'vitest';
import { createCluster } from '../../src/cluster/Cluster.js';
import { isMcgravityError } from '../../src/core/errors.js';
import { Pool } from '../../src/pool/Pool.js';
import { within } from '../helpers/async.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { type Http2Upstream, startHttp2Upstream } from '../helpers/upstreams.js';

const defer = cleanupAfterEach({ ignoreErrors: true });

/** An h2c backend, closed after the test. */
async function h2Backend(
  name: string,
  handler?: Parameters<typeof startHttp2Upstream>[1],
  settings?: http2.Settings,
): Promise<Http2Upstream> {
  const backend = await startHttp2Upstream(name, handler, settings);
  defer(() => backend.close());
  return backend;
}

function h2cPool(url: string, options: ConstructorParameters<typeof Pool>[1] = {}): Pool {
  const pool = new Pool(url, { protocol: 'h2c', ...options });
  defer(() => pool.destroy());
  return pool;
}

describe('HTTP/2 to backends (h2c)', () => {
  it('carries 100 concurrent requests as streams over one connection', async () => {
    const backend = await h2Backend('a');
    const pool = h2cPool(backend.url);
    const answers = await Promise.all(
      Array.from({ length: 100 }, async (_, i) => {
        const response = await pool.request({ method: 'GET', path: `/item/${i}` });
        return `${response.statusCode} ${await response.body.text()}`;
      }),
    );
    expect(answers[42]).toBe('200 a GET /item/42');
    expect(new Set(answers.map((a) => a.split(' ')[0]))).toEqual(new Set(['200']));
    expect(pool.stats().connectionsOpened).toBe(1);
    expect(backend.load.peak).toBeGreaterThan(50); // they really were concurrent
  });

  it('opens another connection only when the backend allows no more streams on the first', async () => {
    const backend = await h2Backend(
      'a',
      (req, res) => {
        req.resume();
        setTimeout(() => res.end('ok'), 20);
      },
      { maxConcurrentStreams: 10 },
    );
    const pool = h2cPool(backend.url);
    await pool.request({ method: 'GET', path: '/warm' }).then((r) => r.body.dump()); // settings known
    await Promise.all(
      Array.from({ length: 30 }, () => pool.request({ method: 'GET', path: '/' }).then((r) => r.body.dump())),
    );
    expect(backend.load.peak).toBeLessThanOrEqual(30);
    expect(pool.stats().connectionsOpened).toBe(3); // 30 streams at most 10 per connection
  });

  it('sends bodies, streamed or whole, and hands back trailers', async () => {
    const backend = await h2Backend('a', (req, res) => {
      let size = 0;
      req.on('data', (chunk: Buffer) => {
        size += chunk.length;
      });
      req.on('end', () => {
        res.addTrailers({ 'grpc-status': '0', 'x-size': String(size) });
        res.end(`got ${size}`);
      });
    });
    const cluster = createCluster({ backends: [backend.url], pool: { protocol: 'h2c' } });
    defer(() => cluster.close({ timeoutMs: 100 }));
    const whole = await cluster.request({ method: 'POST', path: '/', body: 'x'.repeat(70_000) });
    expect(await whole.body.text()).toBe('got 70000');
    const chunks = async function* () {
      for (let i = 0; i < 20; i++) yield Buffer.alloc(50_000, 1);
    };
    const streamed = await cluster.request({ method: 'POST', path: '/', body: Readable.from(chunks()) });
    expect(await streamed.body.text()).toBe('got 1000000');
    const sink = new Writable({ write: (_chunk, _encoding, done) => done() });
    const relayed = await cluster.stream({ method: 'POST', path: '/', body: 'abc' }, () => sink);
    expect(relayed.trailers).toEqual({ 'grpc-status': '0', 'x-size': '3' });
    // undici's own fetch() through the pool (its older handler interface).
    const response = await fetch(`${backend.url}/f`, {
      method: 'POST',
      body: 'hello',
      dispatcher: h2cPool(backend.url).dispatcher,
    });
    expect(await response.text()).toBe('got 5');
    expect(response.headers.get('x-size')).toBeNull(); // a trailer, not a header
  });

  it('lets accepted streams finish on GOAWAY and sends refused ones again, losing no request of any method', async () => {
    let served = 0;
    const backend = await h2Backend('a', (req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (chunk) => {
        body += chunk;
      });
      req.on('end', () => {
        // Every 40th request shuts its connection down gracefully, as a rolling restart would.
        if (++served % 40 === 0) req.stream.session?.close();
        setTimeout(() => res.end(`ok ${req.method} ${body}`), 2);
      });
    });
    const cluster = createCluster({ backends: [backend.url], pool: { protocol: 'h2c' } });
    defer(() => cluster.close({ timeoutMs: 100 }));
    const failures: string[] = [];
    let next = 0;
    const worker = async () => {
      while (next < 1000) {
        const method = next++ % 2 === 0 ? 'GET' : 'POST';
        try {
          const response = await cluster.request({
            method,
            path: '/',
            body: method === 'POST' ? 'data' : null,
          });
          const text = await response.body.text();
          if (text !== `ok ${method} ${method === 'POST' ? 'data' : ''}`) failures.push(text);
        } catch (error) {
          failures.push(String(error));
        }
      }
    };
    await Promise.all(Array.from({ length: 50 }, worker));
    expect(failures).toEqual([]);
    expect(served).toBeGreaterThanOrEqual(1000);
    const stats = cluster.stats();
    expect(stats.endpoints[0]?.pool.connectionsOpened).toBeGreaterThan(10); // the GOAWAYs happened
    expect(stats.endpoints[0]?.pool.resent).toBeGreaterThan(0); // and refused streams were sent again
  });

  it('sends a refused request elsewhere, but never a streamed body it had partly sent', async () => {
    const refuser = await h2Backend('refuser', (req) => {
      req.once('data', () => req.stream.close(http2.constants.NGHTTP2_REFUSED_STREAM));
    });
    const other = await h2Backend('other');
    const cluster = createCluster({
      backends: [
        { url: refuser.url, id: 'refuser' },
        { url: other.url, id: 'other' },
      ],
      balancer: 'round-robin',
      pool: { protocol: 'h2c' },
    });
    defer(() => cluster.close({ timeoutMs: 100 }));
    // A replayable body refused by the first backend is answered by the second.
    const whole = await cluster.request({ method: 'POST', path: '/', body: 'abc', prefer: 'refuser' });
    expect(await whole.body.text()).toBe('other POST /');
    // A stream the first backend began to read cannot be sent again: the call fails, cleanly.
    const chunks = async function* () {
      yield Buffer.from('part one');
      await new Promise((resolve) => setTimeout(resolve, 20));
      yield Buffer.from('part two');
    };
    const error = await cluster
      .request({ method: 'POST', path: '/', body: Readable.from(chunks()), prefer: 'refuser' })
      .catch((e: unknown) => e);
    expect((error as Error).message).toBe('the request body was partly sent and cannot be sent again');
    expect(other.load.peak).toBe(1); // only the replayable request reached it
  });

  it('fails a request as a reset when the backend resets its stream after answering', async () => {
    const backend = await h2Backend('a', (_req, res) => {
      res.writeHead(200);
      res.write('part');
      setTimeout(() => res.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR), 5);
    });
    const pool = h2cPool(backend.url);
    const response = await pool.request({ method: 'GET', path: '/' });
    await expect(response.body.text()).rejects.toThrow(/HTTP\/2 stream closed by the backend with code 2/);
  });

  it('fails a request with a header name that is no HTTP token, and the connection goes on serving', async () => {
    const backend = await h2Backend('a');
    const pool = h2cPool(backend.url);
    const error = await pool
      .request({ method: 'GET', path: '/', headers: { 'bad name': 'x' } })
      .catch((e: unknown) => e);
    expect((error as { code?: string }).code).toBe('ERR_INVALID_HTTP_TOKEN');
    const response = await pool.request({ method: 'GET', path: '/after' });
    expect(await response.body.text()).toBe('a GET /after');
    expect(pool.stats().connectionsOpened).toBe(1); // the connection was not given up for it
  });

  it('refuses a connection that cannot be made as a connect failure', async () => {
    const pool = h2cPool('http://127.0.0.1:1');
    const error = await pool.request({ method: 'GET', path: '/' }).catch((e: unknown) => e);
    expect((error as { code?: string }).code).toBe('ECONNREFUSED');
    expect(isMcgravityError(error)).toBe(false);
  });

  it('sends the HTTP health checks of an h2c cluster over HTTP/2', async () => {
    let healthy = true;
    const backend = await h2Backend('a', (req, res) => {
      req.resume();
      if (req.url === '/health') res.writeHead(healthy ? 200 : 503).end();
      else res.end('ok');
    });
    const cluster = createCluster({
      backends: [backend.url],
      pool: { protocol: 'h2c' },
      health: { path: '/health', intervalMs: 20, unhealthyThreshold: 1, healthyThreshold: 1 },
    });
    defer(() => cluster.close({ timeoutMs: 100 }));
    const down = new Promise<string>((resolve) =>
      cluster.once('endpoint:down', ({ reason }) => resolve(reason)),
    );
    await within(() => backend.load.peak > 0, 2000, 'a check');
    expect(cluster.stats().endpoints[0]?.healthy).toBe(true);
    healthy = false;
    expect(await down).toBe('status 503');
  });

  it('refuses a protocol that does not fit the backend URL', () => {
    expect(() => new Pool('http://127.0.0.1:1', { protocol: 'h2' })).toThrow(
      /pool.protocol 'h2' needs https: backends/,
    );
    expect(() => new Pool('https://127.0.0.1:1', { protocol: 'h2c' })).toThrow(
      /pool.protocol 'h2c' needs http: backends/,
    );
    expect(() => new Pool('http://127.0.0.1:1', { protocol: 'spdy' as never })).toThrow(
      /pool.protocol must be/,
    );
  });

  it('closes gracefully: a stream in flight finishes, then the connection is gone', async () => {
    let release: (() => void) | undefined;
    const backend = await h2Backend('a', (_req, res) => {
      release = () => res.end('late');
    });
    const pool = h2cPool(backend.url);
    const pending = pool.request({ method: 'GET', path: '/' });
    await within(() => release !== undefined, 2000, 'the request at the backend');
    const closed = pool.close();
    release?.();
    expect(await (await pending).body.text()).toBe('late');
    await closed;
    await within(() => backend.sessions.size === 0, 2000, 'the connection closed');
  });
});
