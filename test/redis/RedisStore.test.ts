import { spawn } from 'node:child_process';
import net, { type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RateLimiter } from '../../src/limit/RateLimiter.js';
import { RedisStore } from '../../src/redis/RedisStore.js';
import { flush, within } from '../helpers/async.js';
import { ManualClock } from '../helpers/clock.js';
import { type RedisServer, redisSkipReason, startRedis } from '../helpers/redis.js';
import { describeStoreContract } from '../limit/storeContract.js';

const skip = redisSkipReason();
if (skip !== undefined) console.warn(skip);

describe.skipIf(skip !== undefined)('RedisStore against a real redis-server', () => {
  let redis: RedisServer;
  const clients: Redis[] = [];
  let keyspace = 0;

  function client(): Redis {
    const c = new Redis({ port: redis.port, host: '127.0.0.1', maxRetriesPerRequest: 1 });
    clients.push(c);
    return c;
  }

  beforeAll(async () => {
    redis = await startRedis();
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.quit().catch(() => c.disconnect())));
    await redis?.stop();
  });

  // The same contract as the memory store, on the test's clock, each run in its own key space.
  describeStoreContract(
    'RedisStore',
    (clock) => new RedisStore({ client: client(), clock, prefix: `contract${++keyspace}:` }),
    { runs: 40 },
  );

  it('loads its script after a SCRIPT FLUSH and keeps state in Redis with an expiry', async () => {
    const c = client();
    const store = new RedisStore({ client: c, prefix: 'flush:' });
    const limiter = new RateLimiter({ algorithm: 'fixed-window', limit: 2, windowMs: '1m', store });
    await c.script('FLUSH');
    expect((await limiter.consume('k')).allowed).toBe(true);
    const ttl = await c.pttl('flush:default:k');
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(61_000);
    expect(await c.hget('flush:default:k', 'b')).toBe('1');
  });

  it('enforces one limit across two processes', async () => {
    const worker = fileURLToPath(new URL('./limiterWorker.ts', import.meta.url));
    const root = fileURLToPath(new URL('../..', import.meta.url));
    const runs = [0, 1].map(() => {
      const child = spawn(process.execPath, ['--import', 'tsx', worker, String(redis.port), '60', '50'], {
        cwd: root,
        stdio: ['pipe', 'pipe', 'inherit'],
      });
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
      });
      const ready = () => out.startsWith('ready\n');
      const done = new Promise<number>((resolve, reject) => {
        child.once('exit', (code) =>
          code === 0
            ? resolve(Number(out.slice('ready\n'.length).trim()))
            : reject(new Error(`worker exited ${code}`)),
        );
      });
      done.catch(() => {}); // surfaced by the await below
      return { child, done, ready };
    });
    // Both connected to Redis: start them together.
    await within(() => runs.every((run) => run.ready()), 20_000, 'both workers ready');
    for (const run of runs) run.child.stdin.end('go\n');
    const allowed = await Promise.all(runs.map((r) => r.done));
    // 120 requests against one limit of 50: exactly 50 pass between the two processes, though
    // either alone would have let 50 of its 60 through.
    expect((allowed[0] as number) + (allowed[1] as number)).toBe(50);
  });

  it('fails open or closed when Redis is down, with an event', async () => {
    const down = await startRedis();
    const c = new Redis({
      port: down.port,
      host: '127.0.0.1',
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
    });
    c.on('error', () => {}); // reconnect attempts fail while it is down; that is the point
    clients.push(c);
    await new Promise((resolve) => c.once('ready', resolve));
    await down.stop();
    await new Promise((resolve) => c.once('close', resolve));
    const events: string[] = [];
    const open = new RateLimiter({ limit: 1, windowMs: '1m', store: new RedisStore({ client: c }) });
    open.on('store:error', ({ outcome }) => events.push(outcome));
    expect((await open.consume('k')).allowed).toBe(true);
    const closed = new RateLimiter({
      limit: 1,
      windowMs: '1m',
      store: new RedisStore({ client: c }),
      onStoreError: 'deny',
    });
    closed.on('store:error', ({ outcome }) => events.push(outcome));
    expect((await closed.consume('k')).allowed).toBe(false);
    expect(events).toEqual(['allow', 'deny']);
  });

  it('gives up on a Redis that accepts the connection and never answers, after storeTimeoutMs', async () => {
    const sockets: net.Socket[] = [];
    const silent = net.createServer((socket) => void sockets.push(socket)); // reads nothing, answers nothing
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const c = new Redis({
      port: (silent.address() as AddressInfo).port,
      host: '127.0.0.1',
      enableReadyCheck: false,
      maxRetriesPerRequest: 0,
    });
    c.on('error', () => {});
    const clock = new ManualClock();
    const limiter = new RateLimiter({
      limit: 1,
      windowMs: '1m',
      store: new RedisStore({ client: c }),
      storeTimeoutMs: 250,
      onStoreError: 'deny',
      clock,
    });
    const decision = limiter.consume('k');
    await flush();
    clock.advance(250);
    expect((await decision).allowed).toBe(false);
    expect(limiter.stats().storeErrors).toBe(1);
    c.disconnect();
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => silent.close(resolve));
  });

  it('validates its options', () => {
    expect(() => new RedisStore({ client: {} as never })).toThrow(/client must be a Redis client/);
    expect(() => new RedisStore({ client: client(), ttl: 3 } as never)).toThrow(
      /RedisStore: unknown option "ttl"/,
    );
  });
});
