import { describe, expect, it } from 'vitest';
import {
  type Cluster,
  type ClusterEvents,
  type ClusterOptions,
  createCluster,
} from '../../src/cluster/Cluster.js';
import type { BackendConfig } from '../../src/core/endpoint.js';
import type { Discovery, DiscoveryResult } from '../../src/discovery/Discovery.js';
import { flush, until } from '../helpers/async.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { ManualClock } from '../helpers/clock.js';
import { hangingUpstream, startUpstream } from '../helpers/upstreams.js';

const defer = cleanupAfterEach();

/** A source the test pushes answers into; counts how often it was started and returned. */
class PushedSource implements Discovery {
  readonly description = 'pushed';
  started = 0;
  returned = 0;
  #queue: DiscoveryResult[] = [];
  #waiting:
    | { resolve: (result: IteratorResult<DiscoveryResult>) => void; reject: (error: Error) => void }
    | undefined;
  #failWith: Error | undefined;

  push(value: DiscoveryResult): void {
    const waiting = this.#waiting;
    this.#waiting = undefined;
    if (waiting !== undefined) waiting.resolve({ value, done: false });
    else this.#queue.push(value);
  }

  /** The iterator's pending or next step throws. */
  throwNext(error: Error): void {
    const waiting = this.#waiting;
    this.#waiting = undefined;
    if (waiting !== undefined) waiting.reject(error);
    else this.#failWith = error;
  }

  [Symbol.asyncIterator](): AsyncIterator<DiscoveryResult> {
    this.started++;
    return {
      next: () => {
        const failure = this.#failWith;
        if (failure !== undefined) {
          this.#failWith = undefined;
          this.#queue.length = 0;
          return Promise.reject(failure);
        }
        const queued = this.#queue.shift();
        if (queued !== undefined) return Promise.resolve({ value: queued, done: false });
        return new Promise((resolve, reject) => {
          this.#waiting = { resolve, reject };
        });
      },
      return: () => {
        this.returned++;
        this.#waiting?.resolve({ value: undefined, done: true });
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}

function cluster(options: Partial<ClusterOptions> & { discovery: Discovery }): Cluster {
  const made = createCluster({ name: 'found', retry: false, outlierDetection: false, ...options });
  defer(() => made.close({ timeoutMs: 100 }));
  return made;
}

function ids(c: Cluster): string[] {
  return c.endpoints.map((endpoint) => endpoint.id).sort();
}

function record<E extends keyof ClusterEvents>(c: Cluster, event: E): Parameters<ClusterEvents[E]>[0][] {
  const seen: Parameters<ClusterEvents[E]>[0][] = [];
  c.on(event, ((info: Parameters<ClusterEvents[E]>[0]) => seen.push(info)) as never);
  return seen;
}

const url = (port: number): BackendConfig => ({ url: `http://127.0.0.1:${port}` });

describe('a cluster with a discovery source', () => {
  it('starts empty, is ready at the first answer, then adds, removes and reweighs as answers change', async () => {
    const source = new PushedSource();
    const c = cluster({ discovery: source });
    const updates = record(c, 'discovery:update');
    let ready = false;
    void c.ready().then(() => {
      ready = true;
    });
    await flush();
    expect(ready).toBe(false);
    expect(c.endpoints).toEqual([]);

    source.push([url(8001), url(8002)]);
    await until(() => ready);
    expect(ids(c)).toEqual(['127.0.0.1:8001', '127.0.0.1:8002']);

    source.push([{ ...url(8002), weight: 4 }, url(8003)]);
    await until(() => updates.length === 2);
    expect(updates[1]).toEqual({
      added: ['127.0.0.1:8003'],
      removed: ['127.0.0.1:8001'],
      reweighted: ['127.0.0.1:8002'],
    });
    await until(() => ids(c).length === 2); // 8001 had nothing in flight: it left at once
    expect(ids(c)).toEqual(['127.0.0.1:8002', '127.0.0.1:8003']);
    expect(c.stats().endpoints.find((e) => e.id === '127.0.0.1:8002')?.weight).toBe(4);

    source.push([{ ...url(8002), weight: 4 }, url(8003)]); // the same answer: no update
    await flush();
    expect(updates).toHaveLength(2);
    expect(c.stats().discovery).toEqual({
      source: 'pushed',
      updates: 2,
      errors: 0,
      stale: false,
      endpoints: 2,
    });
  });

  it('keeps the last good set on a failed look-up, a bad entry or an empty answer, and says why', async () => {
    const source = new PushedSource();
    const c = cluster({ discovery: source });
    const errors = record(c, 'discovery:error');
    source.push([url(8001), url(8002)]);
    await c.ready();

    source.push(new Error('dns A api.test: ETIMEOUT'));
    source.push([url(8001), { url: 'ftp://127.0.0.1:8003' }]);
    source.push([]);
    await until(() => errors.length === 3);
    expect(errors.map(({ error, kept }) => [error.message, kept])).toEqual([
      ['dns A api.test: ETIMEOUT', 2],
      [expect.stringContaining('discovered backend [1].url must use http:'), 2],
      ['the source found no backends (allowEmpty is off)', 2],
    ]);
    expect(ids(c)).toEqual(['127.0.0.1:8001', '127.0.0.1:8002']);
    expect(c.stats().discovery).toMatchObject({
      errors: 3,
      stale: true,
      lastError: 'the source found no backends (allowEmpty is off)',
    });

    source.push([url(8001)]);
    await until(() => ids(c).length === 1);
    expect(c.stats().discovery).toMatchObject({ stale: false, endpoints: 1 });
    expect(c.stats().discovery?.lastError).toBeUndefined();
  });

  it('lets an empty answer empty the cluster with allowEmpty', async () => {
    const source = new PushedSource();
    const c = cluster({ discovery: source, allowEmpty: true });
    source.push([url(8001)]);
    await c.ready();
    source.push([]);
    await until(() => c.endpoints.length === 0);
    expect(c.stats().discovery?.endpoints).toBe(0);
  });

  it('never touches the endpoints given in backends', async () => {
    const source = new PushedSource();
    const c = cluster({
      discovery: source,
      backends: [{ url: 'http://127.0.0.1:9000', id: 'static', weight: 2 }],
    });
    source.push([url(8001), { url: 'http://127.0.0.1:9000', id: 'static', weight: 7 }]);
    await c.ready();
    source.push([url(8002)]);
    await until(() => ids(c).includes('127.0.0.1:8002') && !ids(c).includes('127.0.0.1:8001'));
    expect(ids(c)).toEqual(['127.0.0.1:8002', 'static']);
    expect(c.stats().endpoints.find((e) => e.id === 'static')?.weight).toBe(2);
  });

  it('drains a removed endpoint until its requests finish, and keeps it when it comes back meanwhile', async () => {
    const answers: (() => void)[] = [];
    const slow = await startUpstream((_req, res) => {
      answers.push(() => res.end('late'));
    });
    defer(() => slow.close());
    const source = new PushedSource();
    const c = cluster({ discovery: source });
    source.push([{ url: slow.url, id: 'slow' }, url(8009)]);
    await c.ready();
    const inFlight = c.request({ path: '/', prefer: 'slow' });
    await until(() => answers.length === 1, 100_000);

    source.push([url(8009)]);
    await until(() => c.stats().endpoints.find((e) => e.id === 'slow')?.draining === true);
    source.push([{ url: slow.url, id: 'slow' }, url(8009)]); // back before it left
    await until(() => c.stats().endpoints.find((e) => e.id === 'slow')?.draining === false);
    answers.shift()?.();
    expect(await (await inFlight).body.text()).toBe('late');
    await flush();
    expect(ids(c)).toEqual(['127.0.0.1:8009', 'slow']);

    const second = c.request({ path: '/', prefer: 'slow' });
    await until(() => answers.length === 1, 100_000);
    source.push([url(8009)]);
    await flush();
    expect(ids(c)).toContain('slow'); // still draining: its request is in flight
    answers.shift()?.();
    expect(await (await second).body.text()).toBe('late');
    await until(() => !ids(c).includes('slow'), 100_000);
  });

  it('starts a source again after its iterator throws, backing off', async () => {
    const clock = new ManualClock();
    const source = new PushedSource();
    const c = cluster({ discovery: source, clock });
    const errors = record(c, 'discovery:error');
    source.push([url(8001)]);
    await c.ready();
    source.throwNext(new Error('registry connection lost'));
    await until(() => errors.length === 1);
    expect(errors[0]?.error.message).toBe('registry connection lost');
    expect(source.started).toBe(1);
    clock.advance(999);
    expect(source.started).toBe(1);
    clock.advance(1);
    expect(source.started).toBe(2);
    source.push([url(8002)]);
    await until(() => ids(c).includes('127.0.0.1:8002') && ids(c).length === 1);
  });

  it('returns the iterator when the cluster closes, and settles ready()', async () => {
    const source = new PushedSource();
    const c = createCluster({ discovery: source });
    const ready = c.ready();
    await c.close();
    await ready;
    expect(source.returned).toBe(1);
  });

  it('refuses a discovery that is not an async iterable, and an empty cluster without one', () => {
    expect(() => createCluster({ discovery: ['http://a'] as never })).toThrow(
      /discovery must be an async iterable of backend lists/,
    );
    expect(() => createCluster({})).toThrow(/backends is empty; give at least one, a discovery source/);
  });

  it('loses no request while a hanging endpoint is dropped: it stays until its deadline', async () => {
    const hanging = await hangingUpstream();
    defer(() => hanging.close());
    const source = new PushedSource();
    const c = cluster({ discovery: source });
    source.push([{ url: hanging.url, id: 'h' }]);
    await c.ready();
    void c.request({ path: '/' }).catch(() => {});
    await until(() => (c.stats().endpoints[0]?.inflight ?? 0) === 1, 100_000);
    source.push([url(8001)]);
    await flush();
    expect(ids(c)).toEqual(['127.0.0.1:8001', 'h']);
    expect(c.stats().discovery?.endpoints).toBe(2);
  });
});
