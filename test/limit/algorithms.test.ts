import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Evaluation, evaluate, initialState } from '../../src/limit/algorithms.js';
import type { ResolvedRule } from '../../src/limit/rules.js';

const rule = (
  algorithm: ResolvedRule['algorithm'],
  limit: number,
  windowMs: number,
  burst = limit,
): ResolvedRule => ({
  name: 'r',
  algorithm,
  limit,
  windowMs,
  burst,
});

/** Runs requests of cost 1 at the given times; returns which were allowed. */
function run(r: ResolvedRule, times: readonly number[]): boolean[] {
  const state = initialState(r, times[0] ?? 0);
  const out: Evaluation = { allowed: false, remaining: 0, resetMs: 0, retryAfterMs: 0 };
  return times.map((now) => {
    evaluate(r, state, now, 1, true, out);
    return out.allowed;
  });
}

describe('rate-limit algorithms', () => {
  it('token bucket: a burst, then one token per limit / windowMs', () => {
    // 10 per second, burst 3: three at once, then one every 100 ms.
    expect(run(rule('token-bucket', 10, 1000, 3), [0, 0, 0, 0, 50, 100, 100, 200])).toEqual([
      true,
      true,
      true,
      false,
      false,
      true,
      false,
      true,
    ]);
  });

  it('fixed window: limit per aligned window, full again at the next', () => {
    expect(run(rule('fixed-window', 2, 1000), [0, 10, 999, 1000, 1001, 1002])).toEqual([
      true,
      true,
      false,
      true,
      true,
      false,
    ]);
  });

  it('sliding window: the previous window still weighs on the start of the next', () => {
    // Two requests at the end of window 0 weigh 2 × (1 − 0.5) = 1 at the middle of window 1.
    expect(run(rule('sliding-window', 2, 1000), [900, 950, 1500, 1500, 2999])).toEqual([
      true,
      true,
      true,
      false,
      true,
    ]);
  });

  it('says how long to wait when it refuses, and never lets a wait run past the window', () => {
    const r = rule('token-bucket', 10, 1000, 1);
    const state = initialState(r, 0);
    const out: Evaluation = { allowed: false, remaining: 0, resetMs: 0, retryAfterMs: 0 };
    evaluate(r, state, 0, 1, true, out);
    evaluate(r, state, 30, 1, true, out);
    expect(out).toMatchObject({ allowed: false, remaining: 0, retryAfterMs: 70 });
  });

  it('a fixed window never admits more than limit within one aligned window (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 5_000 }), { maxLength: 200 }), (raw) => {
        const times = [...raw].sort((a, b) => a - b);
        const allowed = run(rule('fixed-window', 5, 1000), times);
        const perWindow = new Map<number, number>();
        times.forEach((t, i) => {
          if (allowed[i]) perWindow.set(Math.floor(t / 1000), (perWindow.get(Math.floor(t / 1000)) ?? 0) + 1);
        });
        for (const count of perWindow.values()) expect(count).toBeLessThanOrEqual(5);
      }),
    );
  });
});
