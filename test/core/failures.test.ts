import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { McgravityError } from '../../src/core/errors.js';
import { failureKind, headerOf, responseStarted, retryAfterMs, statusOf } from '../../src/core/failures.js';
import { closedPort, resettingUpstream, startUpstream, type Upstream } from '../helpers/upstreams.js';

const opened: Upstream[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((u) => u.close()));
});

async function errorOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a failure');
    },
    (error: unknown) => error,
  );
}

describe('failureKind on real sockets', () => {
  it('sees a refused connection through undici and through fetch', async () => {
    const port = await closedPort();
    expect(failureKind(await errorOf(request(`http://127.0.0.1:${port}/`)))).toBe('connect-failure');
    const fetchError = await errorOf(fetch(`http://127.0.0.1:${port}/`));
    expect(fetchError).toBeInstanceOf(TypeError); // 'fetch failed', the real error in `cause`
    expect(failureKind(fetchError)).toBe('connect-failure');
  });

  it('sees a reset connection', async () => {
    const upstream = await resettingUpstream();
    opened.push(upstream);
    expect(failureKind(await errorOf(request(upstream.url)))).toBe('reset');
  });

  it('sees timeouts, and nothing in an ordinary error', () => {
    expect(failureKind(new McgravityError('EUPSTREAMTIMEOUT', 'slow'))).toBe('timeout');
    expect(failureKind(Object.assign(new Error('x'), { code: 'UND_ERR_HEADERS_TIMEOUT' }))).toBe('timeout');
    expect(failureKind(new DOMException('timed out', 'TimeoutError'))).toBe('timeout');
    expect(failureKind(new TypeError('undefined is not a function'))).toBeUndefined();
    expect(failureKind('a string')).toBeUndefined();
  });

  it('knows a failure after the response started', () => {
    expect(responseStarted(Object.assign(new Error('x'), { responseStarted: true }))).toBe(true);
    expect(responseStarted(new Error('x'))).toBe(false);
  });
});

describe('response helpers', () => {
  it('read status and headers from undici and fetch responses', async () => {
    const upstream = await startUpstream((_req, res) => {
      res.writeHead(503, { 'Retry-After': '7' }).end();
    });
    opened.push(upstream);
    const viaUndici = await request(upstream.url);
    await viaUndici.body.dump();
    expect(statusOf(viaUndici)).toBe(503);
    expect(headerOf(viaUndici, 'Retry-After')).toBe('7');
    const viaFetch = await fetch(upstream.url);
    await viaFetch.arrayBuffer();
    expect(statusOf(viaFetch)).toBe(503);
    expect(headerOf(viaFetch, 'retry-after')).toBe('7');
    expect(statusOf('nope')).toBeUndefined();
  });

  it('parses Retry-After as seconds or an HTTP date', () => {
    const now = Date.parse('Wed, 25 Nov 2026 16:00:00 GMT');
    expect(retryAfterMs('120', now)).toBe(120_000);
    expect(retryAfterMs('Wed, 25 Nov 2026 16:00:30 GMT', now)).toBe(30_000);
    expect(retryAfterMs('Wed, 25 Nov 2026 15:00:00 GMT', now)).toBe(0);
    expect(retryAfterMs('soon', now)).toBeUndefined();
    expect(retryAfterMs(undefined, now)).toBeUndefined();
  });
});
