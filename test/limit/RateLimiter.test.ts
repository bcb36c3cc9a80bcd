import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { rateLimitHeaders, setRateLimitHeaders } from '../../src/limit/headers.js';
import { MemoryStore } from '../../src/limit/MemoryStore.js';
import { RateLimiter } from '../../src/limit/RateLimiter.js';
import type { RateLimitDecision } from '../../src/limit/rules.js';
import type { RateLimitStore } from '../../src/limit/store.js';
import { flush, until } from '../helpers/async.js';
import { ManualClock } from '../helpers/clock.js';
import { retainedHeap } from '../helpers/gc.js';
import { describeStoreContract } from './storeContract.js';

describeStoreContract('MemoryStore', () => new MemoryStore());

describe('RateLimiter', () => {
  it('never lets a token bucket admit more than burst + rate × t over any span', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 50 }),
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 100, max: 10_000 }),
        fc.array(fc.integer({ min: 0, max: 200 }), { minLength: 1, maxLength: 150 }),
        (limit, burst, windowMs, gaps) => {
          const clock = new ManualClock();
          const limiter = new RateLimiter({ limit, windowMs, burst, clock });
          const admitted: number[] = [];
          for (const gap of gaps) {
            clock.advance(gap);
            if (limiter.consumeSync('k').allowed) admitted.push(clock.now());
          }
          const rate = limit / windowMs;
          for (let i = 0; i < admitted.length; i++) {
            for (let j = i; j < admitted.length; j++) {
              const span = (admitted[j] as number) - (admitted[i] as number);
              expect(j - i + 1).toBeLessThanOrEqual(burst + rate * span + 1e-9);
            }
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('keeps memory bounded under a million distinct keys', () => {
    const store = new MemoryStore({ maxKeys: 10_000 });
    const limiter = new RateLimiter({ limit: 5, windowMs: '1m', store, clock: new ManualClock() });
    const before = retainedHeap();
    for (let i = 0; i < 1_000_000; i++) limiter.consumeSync(`client-${i}`);
    const growth = retainedHeap() - before;
    expect(store.size).toBe(10_000);
    // 10,000 keys with their state are a few MB; a million would be well over 100 MB.
    expect(growth).toBeLessThan(10 * 1024 * 1024);
    // The most recent keys are the ones kept.
    expect(limiter.consumeSync('client-999999').remaining).toBe(3);
    expect(limiter.consumeSync('client-0').remaining).toBe(4);
  });

  it('lets bypass keys through untouched', async () => {
    const limiter = new RateLimiter({
      limit: 1,
      windowMs: '1m',
      bypass: ['internal'],
      clock: new ManualClock(),
    });
    for (let i = 0; i < 5; i++)
      expect(await limiter.consume('internal')).toMatchObject({ allowed: true, bypassed: true });
    const multi = new RateLimiter({
      rules: [
        { name: 'client', limit: 1, windowMs: '1m' },
        { name: 'ip', limit: 1, windowMs: '1m' },
      ],
      bypass: ['internal-service'],
      clock: new ManualClock(),
    });
    for (let i = 0; i < 3; i++) {
      expect((await multi.consume({ client: 'internal-service', ip: '10.0.0.9' })).allowed).toBe(true);
    }
  });

  it('queues refused requests first in, first out, and lets them through as the limit allows', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({
      limit: 10,
      windowMs: 1000,
      burst: 1,
      overflow: 'queue',
      maxQueue: 3,
      clock,
    });
    const order: string[] = [];
    const track = (name: string) =>
      limiter.consume('k').then((decision) => {
        order.push(`${name}:${decision.allowed ? 'in' : 'out'}`);
        return decision;
      });
    await track('a'); // takes the one token
    const waiting = [track('b'), track('c'), track('d')];
    const overflow = await track('e'); // the queue holds 3
    expect(overflow.allowed).toBe(false);
    await flush();
    expect(order).toEqual(['a:in', 'e:out']);
    await clock.advanceAsync(100);
    await until(() => order.length === 3);
    expect(order.at(-1)).toBe('b:in');
    await clock.advanceAsync(200);
    await Promise.all(waiting);
    expect(order).toEqual(['a:in', 'e:out', 'b:in', 'c:in', 'd:in']);
    expect(limiter.stats()).toEqual({ allowed: 4, limited: 1, queued: 3, storeErrors: 0 });
  });

  it('refuses a queued request after queueTimeoutMs', async () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter({
      limit: 1,
      windowMs: '1m',
      overflow: 'queue',
      queueTimeoutMs: 500,
      clock,
    });
    await limiter.consume('k');
    const queued = limiter.consume('k');
    await flush();
    await clock.advanceAsync(500);
    expect(await queued).toMatchObject({ allowed: false, retryAfterMs: 500 });
    await limiter.close();
    expect(clock.pending).toBe(0);
  });

  it('fails open or closed when the store fails, and says so', async () => {
    const broken: RateLimitStore = { consume: () => Promise.reject(new Error('ECONNREFUSED redis')) };
    const open = new RateLimiter({ limit: 1, windowMs: '1m', store: broken, clock: new ManualClock() });
    const errors: string[] = [];
    open.on('store:error', ({ error, outcome }) => errors.push(`${outcome}: ${(error as Error).message}`));
    expect((await open.consume('k')).allowed).toBe(true);
    const closed = new RateLimiter({
      limit: 1,
      windowMs: '1m',
      store: broken,
      onStoreError: 'deny',
      clock: new ManualClock(),
    });
    closed.on('store:error', ({ outcome }) => errors.push(outcome));
    expect((await closed.consume('k')).allowed).toBe(false);
    expect(errors).toEqual(['allow: ECONNREFUSED redis', 'deny']);
    expect(closed.stats().storeErrors).toBe(1);
  });

  it('treats a store that does not answer in storeTimeoutMs as failed', async () => {
    const clock = new ManualClock();
    const hanging: RateLimitStore = { consume: () => new Promise<RateLimitDecision>(() => {}) };
    const limiter = new RateLimiter({
      limit: 1,
      windowMs: '1m',
      store: hanging,
      storeTimeoutMs: 200,
      onStoreError: 'deny',
      clock,
    });
    const decision = limiter.consume('k');
    await flush();
    clock.advance(200);
    expect((await decision).allowed).toBe(false);
  });

  it('refuses consumeSync where it cannot be synchronous', () => {
    const store: RateLimitStore = { consume: () => Promise.reject(new Error('x')) };
    expect(() => new RateLimiter({ limit: 1, windowMs: 1, store }).consumeSync('k')).toThrow(
      /needs the memory store/,
    );
    expect(() => new RateLimiter({ limit: 1, windowMs: 1, overflow: 'queue' }).consumeSync('k')).toThrow(
      /needs the memory store/,
    );
  });

  it.each([
    [{}, /needs limit and windowMs/],
    [{ limit: 0, windowMs: 1000 }, /RateLimiter.limit must be a finite number >= 1, got 0/],
    [{ limit: 5, windowMs: 'often' }, /RateLimiter.windowMs must be a duration/],
    [
      { limit: 5, windowMs: 1000, algorithm: 'leaky' },
      /algorithm must be one of token-bucket, sliding-window, fixed-window/,
    ],
    [
      { limit: 5, windowMs: 1000, algorithm: 'fixed-window', burst: 9 },
      /burst applies only to the token-bucket/,
    ],
    [{ limit: 5, windowMs: 1000, overflow: 'drop' }, /overflow must be 'reject' or 'queue'/],
    [{ limit: 5, windowMs: 1000, maxQueue: 3 }, /apply only with overflow: 'queue'/],
    [{ rules: [] }, /rules must be a non-empty array/],
    [
      {
        rules: [
          { limit: 1, windowMs: 1 },
          { limit: 2, windowMs: 1, name: 'rule0' },
        ],
      },
      /distinct names/,
    ],
    [{ rules: [{ limit: 1, windowMs: 1 }], limit: 4 }, /either rules or an inline limit/],
    [
      { limit: 5, windowMs: 1000, store: new MemoryStore(), maxKeys: 3 },
      /maxKeys applies to the default memory store/,
    ],
    [{ limit: 5, windowMs: 1000, perSecond: 3 }, /RateLimiter: unknown option "perSecond"/],
  ])('rejects %j', (options, message) => {
    expect(() => new RateLimiter(options as never)).toThrow(message);
  });

  it('rejects a cost that is not positive, and a key object missing a rule', async () => {
    const limiter = new RateLimiter({
      rules: [{ name: 'client', limit: 1, windowMs: 1 }],
      clock: new ManualClock(),
    });
    await expect(limiter.consume('k', 0)).rejects.toThrow(/cost must be a finite number > 0/);
    await expect(limiter.consume({ ip: '1' })).rejects.toThrow(/no string for rule "client"/);
  });
});

describe('rate-limit headers', () => {
  const refused: RateLimitDecision = {
    allowed: false,
    limit: 100,
    remaining: 0,
    resetMs: 30_500,
    retryAfterMs: 1_200,
    rule: 'default',
  };

  it('writes the IETF and X- headers, and Retry-After on a refusal', () => {
    expect(rateLimitHeaders(refused, { nowMs: 1_735_473_570_000 })).toEqual({
      'RateLimit-Limit': '100',
      'RateLimit-Remaining': '0',
      'RateLimit-Reset': '31',
      'X-RateLimit-Limit': '100',
      'X-RateLimit-Remaining': '0',
      'X-RateLimit-Reset': '1735473601',
      'Retry-After': '2',
    });
  });

  it('omits Retry-After when allowed or when no wait would help, and X- headers on request', () => {
    const allowed = { ...refused, allowed: true, remaining: 7, retryAfterMs: 0 };
    expect(rateLimitHeaders(allowed, { legacy: false })).toEqual({
      'RateLimit-Limit': '100',
      'RateLimit-Remaining': '7',
      'RateLimit-Reset': '31',
    });
    expect(
      rateLimitHeaders({ ...refused, retryAfterMs: Number.POSITIVE_INFINITY })['Retry-After'],
    ).toBeUndefined();
    const set: Record<string, string> = {};
    setRateLimitHeaders({ setHeader: (name, value) => (set[name] = value) }, refused, { legacy: false });
    expect(Object.keys(set)).toEqual([
      'RateLimit-Limit',
      'RateLimit-Remaining',
      'RateLimit-Reset',
      'Retry-After',
    ]);
  });
});
