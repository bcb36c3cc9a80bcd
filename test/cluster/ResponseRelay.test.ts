import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { ClusterStreamHead, ClusterStreamResult } from '../../src/cluster/ResponseRelay.js';
import { isMcgravityError } from '../../src/core/errors.js';
import { until } from '../helpers/async.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { loopbackFixtures } from '../helpers/fixtures.js';

const defer = cleanupAfterEach();

const { upstream, cluster } = loopbackFixtures(defer, 1000);

/** A Writable that keeps what it is given; `slow` acknowledges each chunk a loop turn later. */
class Sink extends Writable {
  readonly chunks: Buffer[] = [];
  constructor(slow = false) {
    super({ highWaterMark: slow ? 1024 : 16 * 1024 });
    this.slow = slow;
  }
  readonly slow: boolean;
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.chunks.push(chunk);
    if (this.slow) setImmediate(callback);
    else callback();
  }
  get text(): string {
    return Buffer.concat(this.chunks).toString();
  }
}

describe('Cluster.stream()', () => {
  it("writes the answer's body into the factory's Writable and resolves once it has finished", async () => {
    const a = await upstream((req, res) => {
      res.setHeader('x-path', req.url ?? '');
      res.write('hello ');
      setImmediate(() => res.end('world'));
    });
    const pool = cluster({ backends: [{ url: a.url, id: 'a' }] });
    const heads: ClusterStreamHead[] = [];
    const sink = new Sink();
    const result = await pool.stream({ path: '/greeting?x=1' }, (head) => {
      heads.push(head);
      return sink;
    });
    expect(sink.text).toBe('hello world');
    expect(sink.writableFinished).toBe(true);
    expect(heads).toHaveLength(1);
    expect(heads[0]).toMatchObject({ statusCode: 200, headers: { 'x-path': '/greeting?x=1' } });
    expect(heads[0]?.bytesRelayed).toBe(11);
    expect(result).toMatchObject({ statusCode: 200, endpoint: { id: 'a' } });
    expect(pool.stats()).toMatchObject({ requests: 1, errors: 0, inflight: 0 });
  });

  it('retries a 503 elsewhere without showing it to the factory, and relays the last one when out of attempts', async () => {
    const busy = await upstream((_req, res) => {
      res.writeHead(503, { 'content-type': 'text/plain' });
      res.end('busy');
    });
    const ok = await upstream((_req, res) => res.end('ok'));
    const pool = cluster({
      backends: [
        { url: busy.url, id: 'busy' },
        { url: ok.url, id: 'ok' },
      ],
      balancer: 'round-robin',
      retry: { attempts: 2, backoff: { baseMs: 0, maxMs: 0 } },
      outlierDetection: false,
      circuitBreaker: false,
    });
    const statuses: number[] = [];
    const sink = new Sink();
    const result = await pool.stream({ path: '/' }, (head) => {
      statuses.push(head.statusCode);
      return sink;
    });
    expect(statuses).toEqual([200]);
    expect(sink.text).toBe('ok');
    expect(result.endpoint.id).toBe('ok');
    expect(busy.requests).toHaveLength(1);

    // Only busy endpoints left: the last 503 is the answer, body and all.
    await pool.drain('ok');
    const last = new Sink();
    const final = await pool.stream({ path: '/' }, (head) => {
      statuses.push(head.statusCode);
      return last;
    });
    expect(final.statusCode).toBe(503);
    expect(statuses).toEqual([200, 503]);
    expect(last.text).toBe('busy');
    await until(() => pool.stats().inflight === 0);
  });

  it('holds the upstream back while the Writable is full (backpressure), and loses no byte', async () => {
    const chunk = Buffer.alloc(64 * 1024, 'x');
    const total = 64; // 4 MiB
    let blocked = 0;
    const a = await upstream((_req, res) => {
      let sent = 0;
      const more = () => {
        while (sent < total) {
          sent++;
          if (!res.write(chunk)) {
            blocked++;
            res.once('drain', more);
            return;
          }
        }
        res.end();
      };
      more();
    });
    const pool = cluster({ backends: [a.url] });
    const sink = new Sink(true);
    let head: ClusterStreamHead | undefined;
    await pool.stream({ path: '/big' }, (h) => {
      head = h;
      return sink;
    });
    expect(Buffer.concat(sink.chunks).length).toBe(total * chunk.length);
    expect(head?.bytesRelayed).toBe(total * chunk.length);
    expect(blocked).toBeGreaterThan(0); // the slow Writable slowed the upstream down
  });

  it('relays a held answer whole, with backpressure, when the retry policy keeps it after all', async () => {
    const body = Buffer.alloc(2 * 1024 * 1024, 'y');
    const overloaded = () =>
      upstream((_req, res) => {
        res.writeHead(503, { 'content-length': String(body.length) });
        res.end(body);
      });
    const [a, b] = await Promise.all([overloaded(), overloaded()]);
    const pool = cluster({
      backends: [a.url, b.url],
      retry: { attempts: 2, backoff: { baseMs: 0, maxMs: 0 } },
      outlierDetection: false,
      circuitBreaker: false,
    });
    const sink = new Sink(true);
    const result = await pool.stream({ path: '/' }, () => sink);
    expect(result.statusCode).toBe(503); // the second 503, out of attempts
    expect(Buffer.concat(sink.chunks).equals(body)).toBe(true);
    expect(a.requests.length + b.requests.length).toBe(2);
    await until(() => pool.stats().inflight === 0);
  });

  it('destroys the Writable and rejects when the upstream breaks mid-body, and does not retry', async () => {
    const a = await upstream((req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('partial');
      setImmediate(() => req.socket.destroy());
    });
    const pool = cluster({ backends: [a.url], retry: { attempts: 3 } });
    const sink = new Sink();
    const error = await pool.stream({ path: '/' }, () => sink).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect(sink.destroyed).toBe(true);
    expect(sink.writableFinished).toBe(false);
    expect(a.requests).toHaveLength(1);
    await until(() => pool.stats().inflight === 0);
  });

  it('aborts the upstream request when the Writable closes early (a client that left)', async () => {
    let upstreamClosed = false;
    const a = await upstream((_req, res) => {
      res.write('first');
      res.on('close', () => {
        upstreamClosed = true;
      });
    });
    const pool = cluster({ backends: [a.url] });
    const sink = new Sink();
    const pending = pool.stream({ path: '/events' }, () => sink).catch((e: unknown) => e);
    await until(() => sink.chunks.length > 0);
    sink.destroy();
    const error = await pending;
    expect(isMcgravityError(error, 'EABORTED')).toBe(true);
    await until(() => upstreamClosed);
    await until(() => pool.stats().inflight === 0);
  });

  it('aborts the upstream request when the factory throws or hands back a destroyed Writable', async () => {
    const a = await upstream((_req, res) => res.end('ok'));
    const pool = cluster({ backends: [a.url] });
    const thrown = await pool
      .stream({ path: '/' }, () => {
        throw new Error('no room');
      })
      .catch((e: unknown) => e);
    expect(thrown).toMatchObject({ code: 'EINTERNAL', cause: { message: 'no room' } });
    const gone = new Sink();
    gone.destroy();
    const closed = await pool.stream({ path: '/' }, () => gone).catch((e: unknown) => e);
    expect(isMcgravityError(closed, 'EABORTED')).toBe(true);
    await until(() => pool.stats().inflight === 0);
  });

  it('rejects without calling the factory when no answer comes', async () => {
    const a = await upstream((_req, res) => res.end('ok'));
    const pool = cluster({ backends: [{ url: a.url, id: 'a' }] });
    await pool.drain('a');
    let called = false;
    const error = await pool
      .stream({ path: '/' }, () => {
        called = true;
        return new Sink();
      })
      .catch((e: unknown) => e);
    expect(isMcgravityError(error, 'ENOUPSTREAM')).toBe(true);
    expect(called).toBe(false);
    await expect(pool.stream({ path: 'nope' }, () => new Sink())).rejects.toThrow(
      'stream() needs a path starting with "/"',
    );
    await expect(pool.stream({ path: '/' }, 'sink' as never)).rejects.toThrow('stream() needs a factory');
  });

  it("stops at the caller's signal, before or during the body", async () => {
    const a = await upstream((_req, res) => res.write('tick'));
    const pool = cluster({ backends: [a.url] });
    const early = new AbortController();
    early.abort();
    await expect(pool.stream({ path: '/', signal: early.signal }, () => new Sink())).rejects.toBeDefined();
    const late = new AbortController();
    const sink = new Sink();
    const pending = pool.stream({ path: '/', signal: late.signal }, () => sink).catch((e: unknown) => e);
    await until(() => sink.chunks.length > 0);
    late.abort();
    expect(await pending).toBeInstanceOf(Error);
    expect(sink.destroyed).toBe(true);
    await until(() => pool.stats().inflight === 0);
  });

  it('streamInto() tells its settle object once, without a promise: the result, or why not at once', async () => {
    const a = await upstream((_req, res) => res.end('settled'));
    const pool = cluster({ backends: [{ url: a.url, id: 'a' }], retry: { attempts: 2 } });
    const told: string[] = [];
    const settle = (name: string) => ({
      resolve: (result: ClusterStreamResult) =>
        told.push(`${name}: ${result.statusCode} from ${result.endpoint.id}`),
      reject: (error: unknown) =>
        told.push(`${name}: ${isMcgravityError(error) ? error.code : String(error)}`),
    });
    const sink = new Sink();
    pool.streamInto({ path: '/' }, () => sink, settle('relayed'));
    await until(() => told.length === 1);
    expect(sink.text).toBe('settled');
    // Bad options (and a closed cluster, below) are told before streamInto returns.
    pool.streamInto({ path: 'nope' }, () => new Sink(), settle('bad path'));
    expect(told).toHaveLength(2);
    await pool.drain('a');
    pool.streamInto({ path: '/' }, () => new Sink(), settle('drained'));
    await until(() => told.length === 3);
    expect(told).toEqual([
      'relayed: 200 from a',
      'bad path: TypeError: stream() needs a path starting with "/"',
      'drained: ENOUPSTREAM',
    ]);
    await pool.close();
    pool.streamInto({ path: '/' }, () => new Sink(), settle('closed'));
    expect(told.at(-1)).toBe('closed: ECLOSED');
  });
});
