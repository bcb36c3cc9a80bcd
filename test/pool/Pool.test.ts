import { describe, expect, it } from 'vitest';
import { isMcgravityError } from '../../src/core/errors.js';
import { Pool } from '../../src/pool/Pool.js';
import { until } from '../helpers/async.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { hangingUpstream, startUpstream, type Upstream } from '../helpers/upstreams.js';

const defer = cleanupAfterEach();

async function upstream(handler?: Parameters<typeof startUpstream>[0]): Promise<Upstream> {
  const server = await startUpstream(handler);
  defer(() => server.close());
  return server;
}

function pool(origin: string, options = {}): Pool {
  const p = new Pool(origin, options);
  defer(() => p.destroy());
  return p;
}

describe('Pool', () => {
  it('reuses keep-alive connections: 200 sequential requests over one connection', async () => {
    const server = await upstream();
    const p = pool(`${server.url}/ignored/path`);
    expect(p.origin).toBe(server.url);
    for (let i = 0; i < 200; i++) {
      const response = await p.request({ method: 'GET', path: `/item/${i}` });
      expect(await response.body.text()).toBe('ok');
    }
    const stats = p.stats();
    // undici may open a second connection while the first is finishing its response.
    expect(stats.connectionsOpened).toBeLessThanOrEqual(2);
    expect(stats).toMatchObject({ requests: 200, running: 0 });
    expect(stats.reuseRatio).toBeGreaterThanOrEqual(0.99);
  });

  it('opens at most `connections` connections and queues the rest', async () => {
    let release = false;
    const held: (() => void)[] = [];
    const server = await upstream((_req, res) => {
      if (release) res.end('done');
      else held.push(() => res.end('done'));
    });
    const p = pool(server.url, { connections: 2 });
    const responses = Array.from({ length: 5 }, () =>
      p.request({ method: 'GET', path: '/' }).then((r) => r.body.text()),
    );
    await until(() => held.length === 2);
    expect(p.stats()).toMatchObject({ connected: 2, running: 2, pending: 3, utilisation: 1 });
    release = true;
    for (const finish of held) finish();
    expect(await Promise.all(responses)).toEqual(['done', 'done', 'done', 'done', 'done']);
    expect(p.stats().connectionsOpened).toBe(2);
  });

  it('refuses a request with EOVERLOADED (503) when maxPending already wait', async () => {
    const server = await hangingUpstream();
    defer(() => server.close());
    const p = pool(server.url, { connections: 1, maxPending: 2 });
    const send = () => p.request({ method: 'GET', path: '/' }).catch((error: unknown) => error);
    const waiting = [send()];
    await until(() => server.requests.length === 1); // one running on the only connection
    waiting.push(send(), send()); // two waiting for it
    const refused = await p.request({ method: 'GET', path: '/' }).catch((error: unknown) => error);
    expect(isMcgravityError(refused, 'EOVERLOADED')).toBe(true);
    expect((refused as { statusCode: number }).statusCode).toBe(503);
    expect(p.stats()).toMatchObject({ rejected: 1, pending: 2, running: 1 });
    await p.destroy();
    await Promise.all(waiting);
  });

  it('validates its options', () => {
    expect(() => new Pool('http://127.0.0.1:1', { connections: 0 })).toThrow(
      /pool.connections must be an integer >= 1/,
    );
    expect(() => new Pool('http://127.0.0.1:1', { keepAliveTimeoutMs: 'long' as never })).toThrow(
      /pool.keepAliveTimeoutMs/,
    );
    expect(() => new Pool('http://127.0.0.1:1', { max: 3 } as never)).toThrow(/pool: unknown option "max"/);
  });
});
