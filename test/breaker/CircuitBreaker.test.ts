import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CircuitBreaker, type CircuitPermit, type CircuitState } from '../../src/breaker/CircuitBreaker.js';
import { isMcgravityError } from '../../src/core/errors.js';
import { ManualClock } from '../helpers/clock.js';

const fail = () => Promise.reject(new Error('boom'));
const succeed = () => Promise.resolve('ok');

async function failTimes(breaker: CircuitBreaker, times: number): Promise<void> {
  for (let i = 0; i < times; i++) await breaker.execute(fail).catch(() => undefined);
}

describe('CircuitBreaker', () => {
  it('opens after failureThreshold consecutive failures and refuses without calling fn', async () => {
    const clock = new ManualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 3, clock });
    await failTimes(breaker, 2);
    expect(breaker.state).toBe('closed');
    await failTimes(breaker, 1);
    expect(breaker.state).toBe('open');
    let called = false;
    const refused = await breaker
      .execute(async () => {
        called = true;
      })
      .catch((error: unknown) => error);
    expect(called).toBe(false);
    expect(isMcgravityError(refused, 'ECIRCUITOPEN')).toBe(true);
    expect((refused as { statusCode: number }).statusCode).toBe(503);
    expect(breaker.stats()).toMatchObject({ state: 'open', rejected: 1, failures: 3, opens: 1 });
  });

  it('counts only consecutive failures: a success in between starts over', async () => {
    const breaker = new CircuitBreaker({ failureThreshold: 3, clock: new ManualClock() });
    await failTimes(breaker, 2);
    await breaker.execute(succeed);
    await failTimes(breaker, 2);
    expect(breaker.state).toBe('closed');
    expect(breaker.stats().consecutiveFailures).toBe(2);
  });

  it('opens on the failure rate over the window once minimumRequests were seen, and forgets old calls', async () => {
    const clock = new ManualClock();
    const breaker = new CircuitBreaker({
      failureThreshold: 0,
      failureRateThreshold: 0.5,
      minimumRequests: 10,
      windowMs: 10_000,
      clock,
    });
    // 4 failures of 8 calls: 50 %, but under the minimum.
    for (let i = 0; i < 4; i++) {
      await breaker.execute(succeed);
      await breaker.execute(fail).catch(() => undefined);
    }
    expect(breaker.state).toBe('closed');
    // Those calls age out of the window; 9 successes and 1 failure now: 10 %.
    clock.advance(11_000);
    for (let i = 0; i < 9; i++) await breaker.execute(succeed);
    await failTimes(breaker, 1);
    expect(breaker.state).toBe('closed');
    expect(breaker.stats().failureRate).toBeCloseTo(0.1, 10);
    // Failures up to 50 % of the window: open.
    await failTimes(breaker, 7); // 8 of 17 = 47 %
    expect(breaker.state).toBe('closed');
    await failTimes(breaker, 1); // 9 of 18 = 50 %
    expect(breaker.state).toBe('open');
  });

  it('half-opens after openMs, admits one probe, and closes on its success', async () => {
    const clock = new ManualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, openMs: '5s', clock });
    await failTimes(breaker, 1);
    clock.advance(4999);
    expect(breaker.state).toBe('open');
    clock.advance(1);
    expect(breaker.state).toBe('half-open');
    const probe = breaker.tryAcquire();
    expect(probe).toBeDefined();
    expect(breaker.tryAcquire()).toBeUndefined(); // the one probe slot is taken
    probe?.success();
    probe?.success(); // a permit reports once
    expect(breaker.state).toBe('closed');
  });

  it('needs successThreshold probe successes and reopens on any probe failure, backing off', async () => {
    const clock = new ManualClock();
    const breaker = new CircuitBreaker({
      failureThreshold: 1,
      openMs: 1000,
      openBackoff: { multiplier: 2, maxMs: 3000 },
      halfOpenMaxRequests: 2,
      successThreshold: 2,
      clock,
    });
    const opened: number[] = [];
    breaker.on('circuit:open', ({ openMs }) => opened.push(openMs));
    await failTimes(breaker, 1);
    clock.advance(1000);
    await breaker.execute(succeed); // 1 of 2
    expect(breaker.state).toBe('half-open');
    await failTimes(breaker, 1); // probe fails: reopen for 2 s
    clock.advance(1999);
    expect(breaker.state).toBe('open');
    clock.advance(1);
    await failTimes(breaker, 1); // reopen for 4 s, capped at 3 s
    clock.advance(3000);
    await breaker.execute(succeed);
    await breaker.execute(succeed);
    expect(breaker.state).toBe('closed');
    expect(opened).toEqual([1000, 2000, 3000]);
    // Closing resets the backoff.
    await failTimes(breaker, 1);
    expect(opened.at(-1)).toBe(1000);
  });

  it('emits an event for every transition, in order', async () => {
    const clock = new ManualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, openMs: 10, clock });
    const seen: string[] = [];
    breaker.on('circuit:state', (to: CircuitState, from: CircuitState) => seen.push(`${from}->${to}`));
    breaker.on('circuit:open', ({ reason }) => seen.push(`open:${reason}`));
    breaker.on('circuit:half-open', () => seen.push('half-open'));
    breaker.on('circuit:close', () => seen.push('close'));
    await failTimes(breaker, 1);
    clock.advance(10);
    await failTimes(breaker, 1);
    clock.advance(10);
    await breaker.execute(succeed);
    expect(seen).toEqual([
      'closed->open',
      'open:consecutive-failures',
      'open->half-open',
      'half-open',
      'half-open->open',
      'open:probe-failed',
      'open->half-open',
      'half-open',
      'half-open->closed',
      'close',
    ]);
  });

  it('does not count a slow call admitted while closed as a half-open probe', () => {
    const clock = new ManualClock();
    const breaker = new CircuitBreaker({ failureThreshold: 1, openMs: 10, clock });
    const slow = breaker.tryAcquire();
    expect(slow).toBeDefined();
    breaker.tryAcquire()?.failure(); // opens
    clock.advance(10);
    expect(breaker.tryAcquire()).toBeDefined(); // the probe
    slow?.success(); // the old call finishing: ignored
    expect(breaker.state).toBe('half-open');
    expect(breaker.tryAcquire()).toBeUndefined();
  });

  it('uses isFailure for values and errors, and ignores calls the caller aborted', async () => {
    const breaker = new CircuitBreaker({
      failureThreshold: 2,
      clock: new ManualClock(),
      isFailure: (outcome) =>
        'value' in outcome
          ? (outcome.value as { status: number }).status >= 500
          : !(outcome.error instanceof RangeError),
    });
    await breaker.execute(async () => ({ status: 503 }));
    await breaker.execute(() => Promise.reject(new RangeError('client error'))).catch(() => undefined);
    expect(breaker.stats().consecutiveFailures).toBe(0); // the RangeError counted as a success
    await breaker.execute(async () => ({ status: 502 }));
    const controller = new AbortController();
    controller.abort();
    await breaker
      .execute(() => Promise.reject(new Error('aborted')), controller.signal)
      .catch(() => undefined);
    expect(breaker.state).toBe('closed');
    await breaker.execute(async () => ({ status: 500 }));
    expect(breaker.state).toBe('open');
  });

  it('never lets more than halfOpenMaxRequests probes in at once', () => {
    const op = fc.oneof(
      fc.constant({ kind: 'acquire' as const }),
      fc.record({ kind: fc.constant('finish' as const), ok: fc.boolean(), which: fc.nat() }),
      fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 300 }) }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), fc.array(op, { maxLength: 200 }), (max, ops) => {
        const clock = new ManualClock();
        const breaker = new CircuitBreaker({
          failureThreshold: 2,
          openMs: 100,
          halfOpenMaxRequests: max,
          clock,
        });
        const inflight: CircuitPermit[] = []; // permits of admitted calls not yet finished
        for (const step of ops) {
          if (step.kind === 'advance') clock.advance(step.ms);
          else if (step.kind === 'acquire') {
            const permit = breaker.tryAcquire();
            if (permit !== undefined) inflight.push(permit);
          } else if (inflight.length > 0) {
            const [permit] = inflight.splice(step.which % inflight.length, 1) as [CircuitPermit];
            if (step.ok) permit.success();
            else permit.failure();
          }
          if (breaker.state === 'half-open') {
            const probes = inflight.filter((permit) => permit.epoch === breaker.epoch).length;
            expect(probes).toBeLessThanOrEqual(max);
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it('can be tripped and reset by hand', async () => {
    const breaker = new CircuitBreaker({ clock: new ManualClock() });
    breaker.trip();
    expect(breaker.state).toBe('open');
    breaker.reset();
    expect(breaker.state).toBe('closed');
    expect(await breaker.execute(succeed)).toBe('ok');
  });

  it.each([
    [{ failureThreshold: -1 }, /failureThreshold must be an integer >= 0/],
    [{ failureRateThreshold: 1.5 }, /failureRateThreshold must be a finite number > 0 <= 1/],
    [{ openMs: 'soon' }, /openMs must be a duration/],
    [{ halfOpenMaxRequests: 0 }, /halfOpenMaxRequests must be an integer >= 1/],
    [{ failureThreshold: 0 }, /needs a trigger/],
    [{ openMs: 5000, openBackoff: { maxMs: 1000 } }, /openBackoff.maxMs must be >= openMs/],
    [{ threshold: 3 }, /CircuitBreaker: unknown option "threshold"/],
  ])('rejects %j', (options, message) => {
    expect(() => new CircuitBreaker(options as never)).toThrow(message);
  });
});
