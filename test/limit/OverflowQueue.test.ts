import { describe, expect, it } from 'vitest';
import { OverflowQueue } from '../../src/limit/OverflowQueue.js';
import type { RateLimitDecision } from '../../src/limit/rules.js';
import { until } from '../helpers/async.js';
import { ManualClock } from '../helpers/clock.js';

const decision = (allowed: boolean, retryAfterMs = 0): RateLimitDecision => ({
  allowed,
  limit: 1,
  remaining: 0,
  resetMs: retryAfterMs,
  retryAfterMs,
  rule: 'r',
});

describe('OverflowQueue', () => {
  it('lets waiters through first in, first out as the limit allows, and refuses past maxQueue', async () => {
    const clock = new ManualClock();
    let tokens = 0;
    const queue = new OverflowQueue({
      maxQueue: 2,
      queueTimeoutMs: 10_000,
      clock,
      ask: async () => {
        if (tokens === 0) return decision(false, 100);
        tokens--;
        return decision(true);
      },
      refuse: (_resetMs, retryAfterMs) => decision(false, retryAfterMs),
    });
    const order: string[] = [];
    const first = queue.enqueue('k', ['k'], 1, 100).then((d) => order.push(`first ${d.allowed}`));
    const second = queue.enqueue('k', ['k'], 1).then((d) => order.push(`second ${d.allowed}`));
    expect(queue.waiting('k')).toBe(true);
    expect((await queue.enqueue('k', ['k'], 1)).allowed).toBe(false); // the line is full
    tokens = 1;
    clock.advance(100);
    await until(() => order.length === 1);
    expect(order).toEqual(['first true']);
    tokens = 1;
    clock.advance(100);
    await Promise.all([first, second]);
    expect(order).toEqual(['first true', 'second true']);
    expect(queue.waiting('k')).toBe(false);
    expect(queue.queued).toBe(2);
  });

  it('refuses a waiter at queueTimeoutMs, and everyone on close', async () => {
    const clock = new ManualClock();
    const queue = new OverflowQueue({
      maxQueue: 10,
      queueTimeoutMs: 500,
      clock,
      ask: async () => decision(false, 10_000),
      refuse: (_resetMs, retryAfterMs) => decision(false, retryAfterMs),
    });
    const timedOut = queue.enqueue('a', ['a'], 1, 10_000);
    clock.advance(500);
    expect(await timedOut).toMatchObject({ allowed: false, retryAfterMs: 500 });
    const closed = queue.enqueue('b', ['b'], 1, 10_000);
    queue.close();
    expect(await closed).toMatchObject({ allowed: false, retryAfterMs: Number.POSITIVE_INFINITY });
    expect(clock.pending).toBe(0);
  });
});
