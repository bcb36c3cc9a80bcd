/**
 * What every rate-limit store must do, run against the memory store here and against a real Redis
 * in test/redis. Time comes from a ManualClock the store is given.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RateLimiter, type RateLimiterOptions } from '../../src/limit/RateLimiter.js';
import type { RateLimitStore } from '../../src/limit/store.js';
import { ManualClock } from '../helpers/clock.js';

export type StoreFactory = (clock: ManualClock) => RateLimitStore | Promise<RateLimitStore>;

export function describeStoreContract(
  name: string,
  makeStore: StoreFactory,
  options: { runs?: number } = {},
): void {
  async function limiter(settings: RateLimiterOptions) {
    const clock = new ManualClock(1_000_000);
    const store = await makeStore(clock);
    return { clock, limiter: new RateLimiter({ ...settings, store, clock }) };
  }

  async function allowedCount(limiter: RateLimiter, key: string, times: number): Promise<number> {
    let allowed = 0;
    for (let i = 0; i < times; i++) if ((await limiter.consume(key)).allowed) allowed++;
    return allowed;
  }

  describe(`${name}: rate-limit store contract`, () => {
    it('token bucket: a burst, then the refill rate, with exact waits', async () => {
      const { clock, limiter: l } = await limiter({
        algorithm: 'token-bucket',
        limit: 10,
        windowMs: 1000,
        burst: 5,
      });
      expect(await allowedCount(l, 'k', 5)).toBe(5);
      const refused = await l.consume('k');
      expect(refused).toMatchObject({ allowed: false, limit: 10, remaining: 0, retryAfterMs: 100 });
      clock.advance(99);
      expect((await l.consume('k')).allowed).toBe(false);
      clock.advance(1);
      expect(await l.consume('k')).toMatchObject({ allowed: true, remaining: 0 });
      clock.advance(10_000);
      expect(await allowedCount(l, 'k', 6)).toBe(5); // never more than the burst
      expect((await l.consume('other')).allowed).toBe(true); // keys are separate
    });

    it('fixed window: a counter per aligned window', async () => {
      const { clock, limiter: l } = await limiter({ algorithm: 'fixed-window', limit: 3, windowMs: 1000 });
      clock.advance(1_000_000 - (clock.now() % 1000) + 250); // 250 ms into a window
      expect(await allowedCount(l, 'k', 3)).toBe(3);
      expect(await l.consume('k')).toMatchObject({ allowed: false, retryAfterMs: 750, resetMs: 750 });
      clock.advance(750);
      expect(await l.consume('k')).toMatchObject({ allowed: true, remaining: 2 });
    });

    it('sliding window: the last window still weighs, in proportion to its overlap', async () => {
      const { clock, limiter: l } = await limiter({ algorithm: 'sliding-window', limit: 10, windowMs: 1000 });
      clock.advance(1000 - (clock.now() % 1000)); // the start of a window
      expect(await allowedCount(l, 'k', 12)).toBe(10);
      clock.advance(1250); // a quarter into the next window: the 10 weigh 0.75, 7.5 in all
      expect(await allowedCount(l, 'k', 3)).toBe(2);
      clock.advance(1000); // a quarter into the window after: the 2 weigh 1.5
      expect(await allowedCount(l, 'k', 10)).toBe(8);
      clock.advance(1000); // the next: 8 × 0.75 = 6
      expect(await allowedCount(l, 'k', 5)).toBe(4);
      const refused = await l.consume('k');
      expect(refused.allowed).toBe(false);
      clock.advance(refused.retryAfterMs - 1);
      expect((await l.consume('k')).allowed).toBe(false);
      clock.advance(1);
      expect((await l.consume('k')).allowed).toBe(true);
    });

    it('every algorithm: a refused request passes exactly after retryAfterMs, not a millisecond before', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom('token-bucket' as const, 'fixed-window' as const, 'sliding-window' as const),
          fc.integer({ min: 1, max: 20 }),
          fc.integer({ min: 100, max: 5000 }),
          fc.array(fc.integer({ min: 0, max: 400 }), { minLength: 1, maxLength: 40 }),
          fc.integer({ min: 1, max: 3 }),
          async (algorithm, limit, windowMs, gaps, cost) => {
            fc.pre(cost <= limit);
            const { clock, limiter: l } = await limiter({ algorithm, limit, windowMs });
            for (const gap of gaps) {
              clock.advance(gap);
              const decision = await l.consume('k', cost);
              if (decision.allowed) continue;
              expect(decision.retryAfterMs).toBeGreaterThan(0);
              expect(Number.isFinite(decision.retryAfterMs)).toBe(true);
              clock.advance(decision.retryAfterMs - 1);
              const early = await l.consume('k', cost);
              if (early.allowed)
                throw new Error(
                  `${algorithm} allowed 1 ms early: ${JSON.stringify({ decision, early, now: clock.now() })}`,
                );
              clock.advance(1);
              expect((await l.consume('k', cost)).allowed).toBe(true);
            }
          },
        ),
        { numRuns: options.runs ?? 100 },
      );
    });

    it('takes the cost from every rule or from none', async () => {
      const { limiter: l } = await limiter({
        rules: [
          { name: 'client', algorithm: 'fixed-window', limit: 2, windowMs: 60_000 },
          { name: 'ip', algorithm: 'fixed-window', limit: 5, windowMs: 60_000 },
        ],
      });
      const first = await l.consume({ client: 'c1', ip: '10.0.0.1' });
      expect(first).toMatchObject({ allowed: true, rule: 'client', remaining: 1 }); // the tighter rule
      await l.consume({ client: 'c1', ip: '10.0.0.1' });
      const refused = await l.consume({ client: 'c1', ip: '10.0.0.1' });
      expect(refused).toMatchObject({ allowed: false, rule: 'client' });
      // The refusal took nothing from the ip rule: 3 left for other clients on that address.
      expect(await l.consume({ client: 'c2', ip: '10.0.0.1' })).toMatchObject({
        allowed: true,
        rule: 'client',
        remaining: 1,
      });
      expect(await l.consume({ client: 'c3', ip: '10.0.0.1' })).toMatchObject({
        allowed: true,
        remaining: 1,
      });
      expect(await l.consume({ client: 'c4', ip: '10.0.0.1' })).toMatchObject({
        allowed: true,
        rule: 'ip',
        remaining: 0,
      });
      expect(await l.consume({ client: 'c5', ip: '10.0.0.1' })).toMatchObject({ allowed: false, rule: 'ip' });
    });

    it('refuses for good a cost above the limit', async () => {
      const { limiter: l } = await limiter({ limit: 5, windowMs: 1000 });
      expect(await l.consume('k', 6)).toMatchObject({
        allowed: false,
        retryAfterMs: Number.POSITIVE_INFINITY,
      });
      expect(await l.consume('k', 5)).toMatchObject({ allowed: true });
    });
  });
}
