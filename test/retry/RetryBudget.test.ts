import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RetryBudget } from '../../src/retry/RetryBudget.js';
import { ManualClock } from '../helpers/clock.js';

describe('RetryBudget', () => {
  it('allows a share of the requests of the window, plus the floor', () => {
    const clock = new ManualClock();
    const budget = new RetryBudget({ budgetPercent: 20, minRetriesPerSecond: 0, clock });
    for (let i = 0; i < 30; i++) budget.deposit();
    const granted = Array.from({ length: 10 }, () => budget.tryWithdraw()).filter(Boolean).length;
    expect(granted).toBe(6); // 20 % of 30
    expect(budget.stats()).toEqual({ available: 0, requests: 30, retries: 6, exhausted: 4 });

    const quiet = new RetryBudget({ minRetriesPerSecond: 1, ttlMs: 5_000, clock });
    // No traffic at all: the floor of 1 per second over 5 s.
    expect(Array.from({ length: 7 }, () => quiet.tryWithdraw()).filter(Boolean)).toHaveLength(5);
  });

  it('absorbs a burst of failures in one instant when recent traffic paid for it', () => {
    const clock = new ManualClock();
    const budget = new RetryBudget({ clock });
    // 1,000 requests over the last 5 s, then a backend dies and 32 attempts fail at once.
    for (let i = 0; i < 1000; i++) {
      budget.deposit();
      clock.advance(5);
    }
    expect(Array.from({ length: 32 }, () => budget.tryWithdraw()).every(Boolean)).toBe(true);
  });

  it('forgets deposits and withdrawals after ttlMs', () => {
    const clock = new ManualClock();
    const budget = new RetryBudget({ budgetPercent: 10, minRetriesPerSecond: 0, ttlMs: 10_000, clock });
    for (let i = 0; i < 100; i++) budget.deposit();
    for (let i = 0; i < 10; i++) expect(budget.tryWithdraw()).toBe(true);
    expect(budget.tryWithdraw()).toBe(false);
    clock.advance(10_000);
    expect(budget.stats()).toMatchObject({ requests: 0, retries: 0, available: 0 });
    for (let i = 0; i < 10; i++) budget.deposit();
    expect(budget.tryWithdraw()).toBe(true);
    expect(budget.tryWithdraw()).toBe(false);
  });

  it('never grants more than the share of the window plus the floor (property)', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('deposit' as const), n: fc.integer({ min: 1, max: 50 }) }),
      fc.record({ kind: fc.constant('withdraw' as const), n: fc.integer({ min: 1, max: 20 }) }),
      fc.record({ kind: fc.constant('wait' as const), ms: fc.integer({ min: 0, max: 4_000 }) }),
    );
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 100 }),
        fc.integer({ min: 0, max: 5 }),
        fc.array(op, { maxLength: 80 }),
        (percent, perSecond, ops) => {
          const clock = new ManualClock();
          const ttlMs = 10_000;
          const slotMs = ttlMs / 10;
          const budget = new RetryBudget({
            budgetPercent: percent,
            minRetriesPerSecond: perSecond,
            ttlMs,
            clock,
          });
          const log: { slot: number; kind: 'deposit' | 'withdraw' }[] = [];
          for (const step of ops) {
            if (step.kind === 'wait') {
              clock.advance(step.ms);
              continue;
            }
            for (let i = 0; i < step.n; i++) {
              const slot = Math.floor(clock.now() / slotMs);
              if (step.kind === 'deposit') {
                budget.deposit();
                log.push({ slot, kind: 'deposit' });
              } else if (budget.tryWithdraw()) {
                log.push({ slot, kind: 'withdraw' });
                const recent = log.filter((entry) => entry.slot > slot - 10);
                const deposits = recent.filter((entry) => entry.kind === 'deposit').length;
                const withdrawals = recent.length - deposits;
                expect(withdrawals).toBeLessThanOrEqual(
                  (perSecond * ttlMs) / 1000 + (percent / 100) * deposits + 1e-9,
                );
              }
            }
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it.each([
    [{ budgetPercent: -1 }, /budgetPercent must be a finite number >= 0/],
    [{ ttlMs: 10 }, /ttlMs must be at least 1000/],
    [{ minRetryConcurrency: 3 }, /minRetryConcurrency is gone.*minRetriesPerSecond/],
    [{ perSecond: 3 }, /RetryBudget: unknown option "perSecond"/],
  ])('rejects %j', (options, message) => {
    expect(() => new RetryBudget(options as never)).toThrow(message);
  });
});
