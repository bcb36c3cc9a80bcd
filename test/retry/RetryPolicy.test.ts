import { describe, expect, it } from 'vitest';
import { McgravityError } from '../../src/core/errors.js';
import { RetryBudget } from '../../src/retry/RetryBudget.js';
import { isIdempotentMethod, type RetryOptions, RetryPolicy } from '../../src/retry/RetryPolicy.js';
import { flush, until } from '../helpers/async.js';
import { ManualClock } from '../helpers/clock.js';
import { scriptedRandom } from '../helpers/random.js';

const connectRefused = () =>
  Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
const reset = () => Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
const response = (status: number, headers: Record<string, string> = {}) => ({ statusCode: status, headers });

/** A policy with no waiting between attempts unless the test sets a backoff. */
function policy(options: RetryOptions = {}): RetryPolicy {
  return new RetryPolicy({ backoff: { baseMs: 0, maxMs: 0 }, clock: new ManualClock(), ...options });
}

/** An attempt function that plays `script` in order: errors are thrown, anything else returned. */
function scripted(script: unknown[]) {
  let calls = 0;
  const fn = async () => {
    const step = script[calls++];
    if (step instanceof Error) throw step;
    return step;
  };
  return { fn, calls: () => calls };
}

describe('RetryPolicy', () => {
  it('retries a connect failure even when the call is not idempotent', async () => {
    const { fn, calls } = scripted([connectRefused(), connectRefused(), 'ok']);
    expect(await policy().execute(fn)).toBe('ok');
    expect(calls()).toBe(3);
  });

  it('does not retry a reset or a 503 of a non-idempotent call, but does of an idempotent one', async () => {
    const resetOnce = scripted([reset(), 'ok']);
    await expect(policy().execute(resetOnce.fn)).rejects.toThrow('socket hang up');
    expect(resetOnce.calls()).toBe(1);
    const unavailable = scripted([response(503), 'ok']);
    expect(await policy().execute(unavailable.fn)).toEqual(response(503));
    expect(unavailable.calls()).toBe(1);
    const idempotent = scripted([reset(), response(503), 'ok']);
    expect(await policy().execute(idempotent.fn, { idempotent: true })).toBe('ok');
    expect(idempotent.calls()).toBe(3);
  });

  it('stops after `attempts`, returning the last response or throwing the last error', async () => {
    const responses = scripted([response(502), response(503), response(504), 'never']);
    expect(await policy({ attempts: 3 }).execute(responses.fn, { idempotent: true })).toEqual(response(504));
    expect(responses.calls()).toBe(3);
    const errors = scripted([connectRefused(), connectRefused(), new Error('third')]);
    await expect(policy({ attempts: 2 }).execute(errors.fn)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect(errors.calls()).toBe(2);
  });

  it('stops when canRetry() says there is nowhere left to go, keeping the outcome at hand', async () => {
    const discarded: unknown[] = [];
    let left = 1;
    const canRetry = () => left-- > 0;
    const responses = scripted([response(503), response(503), 'never']);
    const retrying = policy({ attempts: 5, onDiscard: (value) => void discarded.push(value) });
    expect(await retrying.execute(responses.fn, { idempotent: true, canRetry })).toEqual(response(503));
    expect(responses.calls()).toBe(2);
    expect(discarded).toEqual([response(503)]); // the one kept is not discarded
    const errors = scripted([connectRefused(), 'never']);
    await expect(policy().execute(errors.fn, { canRetry: () => false })).rejects.toMatchObject({
      code: 'ECONNREFUSED',
    });
    expect(errors.calls()).toBe(1);
  });

  it('retries only what retryOn names: 5xx, explicit statuses, timeouts', async () => {
    const status500 = scripted([response(500), 'ok']);
    expect(await policy().execute(status500.fn, { idempotent: true })).toEqual(response(500)); // not a gateway error
    const with5xx = scripted([response(500), response(429), 'ok']);
    expect(await policy({ retryOn: ['5xx', 429] }).execute(with5xx.fn, { idempotent: true })).toBe('ok');
    const unknown = scripted([new TypeError('a bug'), 'ok']);
    await expect(
      policy({ retryOn: ['5xx', 'reset'] }).execute(unknown.fn, { idempotent: true }),
    ).rejects.toThrow('a bug');
  });

  it('never retries once the response has started', async () => {
    const midStream = Object.assign(reset(), { responseStarted: true });
    const { fn, calls } = scripted([midStream, 'ok']);
    await expect(policy().execute(fn, { idempotent: true })).rejects.toBe(midStream);
    expect(calls()).toBe(1);
  });

  it('waits with exponential backoff and full jitter between attempts', async () => {
    const clock = new ManualClock();
    const delays: number[] = [];
    const retry = new RetryPolicy({
      attempts: 4,
      backoff: { baseMs: 100, maxMs: 300 },
      clock,
      random: scriptedRandom([0.5, 0.5, 0.5]),
    });
    retry.on('retry', ({ delayMs }) => delays.push(delayMs));
    const { fn, calls } = scripted([connectRefused(), connectRefused(), connectRefused(), 'ok']);
    const result = retry.execute(fn);
    await until(() => calls() === 1 && delays.length === 1);
    clock.advance(49);
    await flush();
    expect(calls()).toBe(1);
    clock.advance(1);
    await until(() => calls() === 2 && delays.length === 2);
    clock.advance(100);
    await until(() => calls() === 3 && delays.length === 3);
    clock.advance(150);
    expect(await result).toBe('ok');
    // half of min(300, 100 × 2^k): 50, 100, then 150 (capped at 300 before the jitter)
    expect(delays).toEqual([50, 100, 150]);
  });

  it('honours Retry-After, and gives up when it asks for longer than maxRetryAfterMs', async () => {
    const clock = new ManualClock();
    const retry = new RetryPolicy({ clock, maxRetryAfterMs: '5s' });
    const delays: number[] = [];
    retry.on('retry', ({ delayMs }) => delays.push(delayMs));
    const polite = scripted([response(503, { 'retry-after': '2' }), 'ok']);
    const result = retry.execute(polite.fn, { idempotent: true });
    await until(() => delays.length === 1);
    clock.advance(2000);
    expect(await result).toBe('ok');
    expect(delays).toEqual([2000]);
    const tooLong = scripted([response(503, { 'retry-after': '60' }), 'ok']);
    expect(await retry.execute(tooLong.fn, { idempotent: true })).toEqual(
      response(503, { 'retry-after': '60' }),
    );
    expect(tooLong.calls()).toBe(1);
  });

  it('times out each attempt, aborting its signal, and retries timeouts when told to', async () => {
    const clock = new ManualClock();
    const retry = new RetryPolicy({
      clock,
      perTryTimeoutMs: 1000,
      retryOn: ['timeout'],
      backoff: { baseMs: 0, maxMs: 0 },
    });
    const signals: AbortSignal[] = [];
    let calls = 0;
    const result = retry.execute(
      ({ signal }) => {
        calls++;
        signals.push(signal);
        return calls === 1 ? new Promise<string>(() => {}) : Promise.resolve('second');
      },
      { idempotent: true },
    );
    await until(() => calls === 1);
    clock.advance(1000);
    expect(await result).toBe('second');
    expect(signals[0]?.aborted).toBe(true);
    expect(signals[0]?.reason).toBeInstanceOf(McgravityError);
    expect(signals[0]?.reason).toMatchObject({ code: 'EUPSTREAMTIMEOUT' });
  });

  it('stops waiting and attempting when the caller aborts', async () => {
    const clock = new ManualClock();
    const retry = new RetryPolicy({ clock, backoff: { baseMs: 1000, maxMs: 1000 }, random: () => 0.99 });
    const controller = new AbortController();
    const { fn, calls } = scripted([connectRefused(), 'ok']);
    const result = retry.execute(fn, { signal: controller.signal });
    await until(() => calls() === 1);
    controller.abort(new Error('client went away'));
    await expect(result).rejects.toThrow('client went away');
    clock.advance(5000);
    await flush();
    expect(calls()).toBe(1);
    expect(clock.pending).toBe(0);
  });

  it('hands discarded responses to onDiscard', async () => {
    const discarded: unknown[] = [];
    const { fn } = scripted([response(502), response(503), 'ok']);
    await policy({ onDiscard: (value) => void discarded.push(value) }).execute(fn, { idempotent: true });
    expect(discarded).toEqual([response(502), response(503)]);
  });

  it('keeps retries within the budget, and fails a refused retry of an error with ERETRYBUDGET', async () => {
    const clock = new ManualClock();
    const budget = new RetryBudget({ budgetPercent: 50, minRetriesPerSecond: 0, clock });
    const retry = new RetryPolicy({ budget, clock, backoff: { baseMs: 10, maxMs: 10 }, random: () => 0.5 });
    const exhausted: number[] = [];
    retry.on('retry:budget-exhausted', ({ attempt }) => exhausted.push(attempt));
    // Four calls, each failing at first: their deposits buy 50 % of 4 = 2 retries.
    const attempts = new Map<number, number>();
    const calls = [0, 1, 2, 3].map((id) =>
      retry.execute(async () => {
        const n = (attempts.get(id) ?? 0) + 1;
        attempts.set(id, n);
        if (n === 1) throw connectRefused();
        return `call ${id}`;
      }),
    );
    const settled = Promise.allSettled(calls);
    await until(() => exhausted.length === 2);
    clock.advance(10);
    const results = await settled;
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(2);
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(refused.map((r) => (r.reason as { code?: string }).code)).toEqual([
      'ERETRYBUDGET',
      'ERETRYBUDGET',
    ]);
    expect(refused[0]).toMatchObject({ reason: { cause: { code: 'ECONNREFUSED' } } });
    expect(retry.stats()).toEqual({ calls: 4, retries: 2, requeues: 0, budgetExhausted: 2 });
    expect(budget.stats()).toEqual({ available: 0, requests: 4, retries: 2, exhausted: 2 });
  });

  it('requeues an attempt that never reached its upstream at once, outside the budget, for any method', async () => {
    const clock = new ManualClock();
    const budget = new RetryBudget({ budgetPercent: 0, minRetriesPerSecond: 0, clock });
    const retry = new RetryPolicy({ budget, clock, attempts: 3 });
    const requeued: number[] = [];
    retry.on('requeue', ({ attempt }) => requeued.push(attempt));
    const { fn, calls } = scripted([connectRefused(), connectRefused(), 'ok']);
    // Not idempotent, no budget at all, no clock advance: requeues neither wait nor draw on it.
    await expect(retry.execute(fn, { requeue: true })).resolves.toBe('ok');
    expect(calls()).toBe(3);
    expect(requeued).toEqual([2, 3]);
    expect(retry.stats()).toMatchObject({ retries: 0, requeues: 2, budgetExhausted: 0 });
    // Bounded by the attempts all the same.
    const { fn: always } = scripted([connectRefused(), connectRefused(), connectRefused(), 'never']);
    await expect(retry.execute(always, { requeue: true })).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('never sends again a request that failed after it was written (a reset POST)', async () => {
    const retry = new RetryPolicy({ budget: false });
    const written = reset();
    const { fn, calls } = scripted([written, 'again']);
    await expect(retry.execute(fn, { requeue: true })).rejects.toBe(written);
    expect(calls()).toBe(1);
  });

  it('does not wait out a Retry-After when the retry goes elsewhere', async () => {
    const clock = new ManualClock();
    const retry = new RetryPolicy({ clock, random: () => 0, budget: false });
    const busy = { statusCode: 503, headers: { 'retry-after': '5' } };
    const { fn } = scripted([busy, 'ok']);
    // With no clock advance at all, only a zero backoff lets the second attempt run.
    await expect(retry.execute(fn, { idempotent: true, honourRetryAfter: false })).resolves.toBe('ok');
  });

  it('knows which HTTP methods are idempotent', () => {
    expect(['GET', 'head', 'PUT', 'DELETE', 'OPTIONS', 'TRACE', undefined].every(isIdempotentMethod)).toBe(
      true,
    );
    expect(['POST', 'PATCH', 'CONNECT'].some(isIdempotentMethod)).toBe(false);
  });

  it.each([
    [{ attempts: 0 }, /attempts must be an integer >= 1/],
    [{ retryOn: ['sometimes'] }, /retryOn entries must be/],
    [{ retryOn: [700] }, /retryOn entries must be/],
    [{ perTryTimeoutMs: 'fast' }, /perTryTimeoutMs must be a duration/],
    [{ budget: { budgetPercent: 1200 } }, /budgetPercent must be a finite number >= 0 <= 1000/],
    [{ retries: 2 }, /RetryPolicy: unknown option "retries"/],
  ])('rejects %j', (options, message) => {
    expect(() => new RetryPolicy(options as never)).toThrow(message);
  });
});
