/**
 * A circuit breaker: stops calling a dependency that keeps failing, and lets a few probes through
 * after a pause to find out whether it is back.
 *
 * ```
 *            failureThreshold consecutive failures,
 *            or failureRateThreshold over windowMs (after minimumRequests)
 *   closed ─────────────────────────────────────────────▶ open
 *     ▲                                                   │  openMs passes (× openBackoff.multiplier
 *     │ successThreshold probe successes                  ▼  for each reopening in a row)
 *     └─────────────────────────────────────────────── half-open ── any probe fails ──▶ open
 *                                          at most halfOpenMaxRequests probes at once
 * ```
 *
 * Semantics follow resilience4j and cockatiel: the consecutive and rate triggers may be combined
 * (either trips); half-open admits a bounded number of concurrent probes, never a burst; an outcome
 * of a call admitted in an earlier state (a slow call that started while closed) does not count in
 * the new one. Open to half-open happens lazily, at the first call or state read after `openMs`.
 *
 * `execute(fn)` wraps a call; `tryAcquire()` is the hot-path form: it hands back a single-use
 * {@link CircuitPermit} (or nothing), whose `success()`, `failure()` or `release()` reports the call,
 * once, against the state it was admitted in. O(1) per call; the rolling window is a ring of 10
 * buckets.
 */
import { EventEmitter } from 'eventemitter3';
import { type Clock, systemClock } from '../core/clock.js';
import { type Duration, optionalDuration } from '../core/duration.js';
import { McgravityError } from '../core/errors.js';
import { neverAborted } from '../core/signals.js';
import { checkKnownOptions, optionalFunction, optionalNumber } from '../core/validate.js';
import { RollingWindow } from './RollingWindow.js';

/** The breaker's state as callers see it. */
export type CircuitState = 'closed' | 'open' | 'half-open';

/** What a guarded call produced: a value, or an error. */
export type CallOutcome = { readonly error: unknown } | { readonly value: unknown };

/** Why the breaker opened. */
export type OpenReason = 'consecutive-failures' | 'failure-rate' | 'probe-failed';

/** Options of {@link CircuitBreaker}. */
export interface CircuitBreakerOptions {
  /** Consecutive failures that open the circuit; 0 turns this trigger off. @default 5 */
  failureThreshold?: number;
  /** Failure rate in (0, 1] over `windowMs` that opens the circuit; off unless set. */
  failureRateThreshold?: number;
  /** Length of the rolling window for the failure rate. @default 10_000 */
  windowMs?: Duration;
  /** Calls the window must hold before the failure rate can open the circuit. @default 10 */
  minimumRequests?: number;
  /** How long the circuit stays open before probing (recovery timeout). @default 10_000 */
  openMs?: Duration;
  /** Grow `openMs` each time the circuit reopens without having closed. Off by default. */
  openBackoff?: {
    /** Factor per reopening, >= 1. @default 2 */
    multiplier?: number;
    /** Longest open period. @default 300_000 */
    maxMs?: Duration;
  };
  /** Probes allowed at once while half-open. @default 1 */
  halfOpenMaxRequests?: number;
  /** Probe successes that close the circuit. @default 1 */
  successThreshold?: number;
  /**
   * Whether an outcome counts as a failure. Default: every error does, every value does not. Errors
   * from calls whose caller aborted them never count.
   */
  isFailure?: (outcome: CallOutcome) => boolean;
  /** Clock for open periods and the rolling window. @default systemClock */
  clock?: Clock;
  /** Name used in error messages and events. @default 'circuit' */
  name?: string;
}

/** Events of {@link CircuitBreaker}; every transition has one. */
export interface CircuitBreakerEvents {
  'circuit:open': (info: { from: CircuitState; reason: OpenReason; openMs: number }) => void;
  'circuit:half-open': () => void;
  'circuit:close': () => void;
  /** Any transition, with both ends. */
  'circuit:state': (to: CircuitState, from: CircuitState) => void;
}

/** Counters of {@link CircuitBreaker.stats}. */
export interface CircuitBreakerStats {
  readonly state: CircuitState;
  /** Calls admitted since construction. */
  readonly admitted: number;
  /** Calls refused since construction. */
  readonly rejected: number;
  /** Failures recorded since construction. */
  readonly failures: number;
  /** Consecutive failures now (closed state). */
  readonly consecutiveFailures: number;
  /** Failure rate over the rolling window now (kept only with `failureRateThreshold`), 0 when empty. */
  readonly failureRate: number;
  /** Times the circuit has opened. */
  readonly opens: number;
}

type State =
  | { readonly kind: 'closed'; consecutiveFailures: number }
  | { readonly kind: 'open'; readonly until: number; readonly reopenings: number }
  | { readonly kind: 'half-open'; probes: number; successes: number; readonly reopenings: number };

const KNOWN = [
  'failureThreshold',
  'failureRateThreshold',
  'windowMs',
  'minimumRequests',
  'openMs',
  'openBackoff',
  'halfOpenMaxRequests',
  'successThreshold',
  'isFailure',
  'clock',
  'name',
];

const defaultIsFailure = (outcome: CallOutcome): boolean => 'error' in outcome;

/** A circuit breaker around any async call. */
export class CircuitBreaker extends EventEmitter<CircuitBreakerEvents> {
  readonly name: string;
  readonly #failureThreshold: number;
  readonly #rateThreshold: number;
  readonly #minimumRequests: number;
  readonly #openMs: number;
  readonly #backoffMultiplier: number;
  readonly #maxOpenMs: number;
  readonly #halfOpenMax: number;
  readonly #successThreshold: number;
  readonly #isFailure: (outcome: CallOutcome) => boolean;
  readonly #clock: Clock;
  readonly #window: RollingWindow;
  #state: State = { kind: 'closed', consecutiveFailures: 0 };
  #epoch = 0;
  #admitted = 0;
  #rejected = 0;
  #failures = 0;
  #opens = 0;

  constructor(options: CircuitBreakerOptions = {}) {
    super();
    checkKnownOptions(options, KNOWN, 'CircuitBreaker');
    this.name = options.name ?? 'circuit';
    this.#failureThreshold = optionalNumber(options.failureThreshold, 'failureThreshold', 5, {
      min: 0,
      integer: true,
    });
    this.#rateThreshold =
      options.failureRateThreshold === undefined
        ? 0
        : optionalNumber(options.failureRateThreshold, 'failureRateThreshold', 0, { above: 0, max: 1 });
    this.#minimumRequests = optionalNumber(options.minimumRequests, 'minimumRequests', 10, {
      min: 1,
      integer: true,
    });
    const windowMs = optionalDuration(options.windowMs, 'windowMs', 10_000);
    if (windowMs <= 0) throw new RangeError(`windowMs must be > 0, got ${String(options.windowMs)}`);
    this.#openMs = optionalDuration(options.openMs, 'openMs', 10_000);
    const backoff = options.openBackoff;
    this.#backoffMultiplier =
      backoff === undefined ? 1 : optionalNumber(backoff.multiplier, 'openBackoff.multiplier', 2, { min: 1 });
    this.#maxOpenMs =
      backoff === undefined ? this.#openMs : optionalDuration(backoff.maxMs, 'openBackoff.maxMs', 300_000);
    if (this.#maxOpenMs < this.#openMs) {
      throw new RangeError(`openBackoff.maxMs must be >= openMs (${this.#openMs}), got ${this.#maxOpenMs}`);
    }
    this.#halfOpenMax = optionalNumber(options.halfOpenMaxRequests, 'halfOpenMaxRequests', 1, {
      min: 1,
      integer: true,
    });
    this.#successThreshold = optionalNumber(options.successThreshold, 'successThreshold', 1, {
      min: 1,
      integer: true,
    });
    this.#isFailure = optionalFunction(options.isFailure, 'isFailure', defaultIsFailure);
    this.#clock = options.clock ?? systemClock;
    this.#window = new RollingWindow(windowMs);
    if (this.#failureThreshold === 0 && this.#rateThreshold === 0) {
      throw new RangeError('CircuitBreaker needs a trigger: failureThreshold >= 1 or a failureRateThreshold');
    }
  }

  /** The state now (moving from open to half-open if `openMs` has passed). */
  get state(): CircuitState {
    this.#maybeHalfOpen();
    return this.#state.kind;
  }

  /**
   * Changes with every transition. Read it right after {@link CircuitBreaker.tryAcquire} and pass it
   * to `onSuccess` / `onFailure`, so that a call admitted in an earlier state is not counted in a
   * later one.
   */
  get epoch(): number {
    return this.#epoch;
  }

  /**
   * Guards one call: refuses at once with `code: 'ECIRCUITOPEN'` while open (without calling `fn`),
   * otherwise calls `fn(signal)` and records its outcome.
   */
  execute<T>(fn: (signal: AbortSignal) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const permit = this.tryAcquire();
    if (permit === undefined) {
      return Promise.reject(
        new McgravityError('ECIRCUITOPEN', `${this.name}: circuit is ${this.#state.kind}, call refused`),
      );
    }
    let pending: Promise<T>;
    try {
      pending = Promise.resolve(fn(signal ?? neverAborted));
    } catch (error) {
      pending = Promise.reject(error);
    }
    // then() rather than async/await: one promise hop less per call on the hot path.
    return pending.then(
      (value) => {
        if (this.#isFailure({ value })) permit.failure();
        else permit.success();
        return value;
      },
      (error: unknown) => {
        if (signal?.aborted) permit.release();
        else if (this.#isFailure({ error })) permit.failure();
        else permit.success();
        throw error;
      },
    );
  }

  /**
   * Admits one call and hands back its permit, or refuses it (open, or half-open with every probe
   * slot taken) with `undefined`. Report the call's end through the permit, exactly once.
   */
  tryAcquire(): CircuitPermit | undefined {
    this.#maybeHalfOpen();
    const state = this.#state;
    if (state.kind === 'closed') {
      this.#admitted++;
      return new CircuitPermit(this, this.#epoch);
    }
    if (state.kind === 'half-open' && state.probes < this.#halfOpenMax) {
      state.probes++;
      this.#admitted++;
      return new CircuitPermit(this, this.#epoch);
    }
    this.#rejected++;
    return undefined;
  }

  /**
   * Records a success of a call admitted in `epoch`.
   * @deprecated report through the {@link CircuitPermit} that {@link CircuitBreaker.tryAcquire} gave
   */
  onSuccess(epoch = this.#epoch): void {
    if (epoch !== this.#epoch) return;
    const state = this.#state;
    if (state.kind === 'closed') {
      state.consecutiveFailures = 0;
      // Only the rate trigger needs the window; without it a success costs no clock read.
      if (this.#rateThreshold > 0) this.#window.record(true, this.#clock.now());
    } else if (state.kind === 'half-open') {
      state.probes--;
      state.successes++;
      if (state.successes >= this.#successThreshold) this.#close();
    }
  }

  /**
   * Records a failure of a call admitted in `epoch`.
   * @deprecated report through the {@link CircuitPermit} that {@link CircuitBreaker.tryAcquire} gave
   */
  onFailure(epoch = this.#epoch): void {
    this.#failures++;
    if (epoch !== this.#epoch) return;
    const state = this.#state;
    if (state.kind === 'closed') {
      state.consecutiveFailures++;
      if (this.#failureThreshold > 0 && state.consecutiveFailures >= this.#failureThreshold) {
        this.#open('consecutive-failures', 0);
        return;
      }
      if (this.#rateThreshold > 0) {
        const now = this.#clock.now();
        this.#window.record(false, now);
        const failures = this.#window.failures(now);
        const total = failures + this.#window.successes(now);
        if (total >= this.#minimumRequests && failures / total >= this.#rateThreshold)
          this.#open('failure-rate', 0);
      }
    } else if (state.kind === 'half-open') {
      this.#open('probe-failed', state.reopenings + 1);
    }
  }

  /**
   * Gives back a call admitted in `epoch` whose outcome says nothing about the dependency.
   * @deprecated report through the {@link CircuitPermit} that {@link CircuitBreaker.tryAcquire} gave
   */
  release(epoch = this.#epoch): void {
    if (epoch !== this.#epoch) return;
    const state = this.#state;
    if (state.kind === 'half-open') state.probes--;
  }

  /** Counters and the state now. */
  stats(): CircuitBreakerStats {
    const state = this.state;
    const now = this.#clock.now();
    const failures = this.#window.failures(now);
    const total = failures + this.#window.successes(now);
    return {
      state,
      admitted: this.#admitted,
      rejected: this.#rejected,
      failures: this.#failures,
      consecutiveFailures: this.#state.kind === 'closed' ? this.#state.consecutiveFailures : 0,
      failureRate: total === 0 ? 0 : failures / total,
      opens: this.#opens,
    };
  }

  /** Forces the circuit open (for example from an operator's command) for `openMs`. */
  trip(): void {
    if (this.#state.kind !== 'open') this.#open('consecutive-failures', 0);
  }

  /** Forces the circuit closed and forgets its history. */
  reset(): void {
    if (this.#state.kind !== 'closed') this.#close();
    else this.#window.reset();
  }

  #maybeHalfOpen(): void {
    const state = this.#state;
    if (state.kind !== 'open' || this.#clock.now() < state.until) return;
    this.#transition({ kind: 'half-open', probes: 0, successes: 0, reopenings: state.reopenings });
    this.emit('circuit:half-open');
  }

  #open(reason: OpenReason, reopenings: number): void {
    const from = this.#state.kind;
    const openMs = Math.min(this.#maxOpenMs, this.#openMs * this.#backoffMultiplier ** reopenings);
    this.#opens++;
    this.#transition({ kind: 'open', until: this.#clock.now() + openMs, reopenings });
    this.emit('circuit:open', { from, reason, openMs });
  }

  #close(): void {
    this.#window.reset();
    this.#transition({ kind: 'closed', consecutiveFailures: 0 });
    this.emit('circuit:close');
  }

  #transition(next: State): void {
    const from = this.#state.kind;
    this.#state = next;
    this.#epoch++;
    this.emit('circuit:state', next.kind, from);
  }
}

/**
 * One admitted call of a {@link CircuitBreaker}: report how it ended with exactly one of `success()`,
 * `failure()` or `release()` (the caller gave up: the outcome says nothing). Later reports are
 * ignored, and so is a report after the breaker changed state (the call was admitted in another
 * state), so a half-open breaker never lets more than `halfOpenMaxRequests` probes run at once.
 */
export class CircuitPermit {
  readonly #breaker: CircuitBreaker;
  /** The breaker's epoch when the call was admitted. */
  readonly epoch: number;
  #used = false;

  constructor(breaker: CircuitBreaker, epoch: number) {
    this.#breaker = breaker;
    this.epoch = epoch;
  }

  /** True once the call was reported. */
  get used(): boolean {
    return this.#used;
  }

  /** The call succeeded. */
  success(): void {
    if (this.#used) return;
    this.#used = true;
    this.#breaker.onSuccess(this.epoch);
  }

  /** The call failed. */
  failure(): void {
    if (this.#used) return;
    this.#used = true;
    this.#breaker.onFailure(this.epoch);
  }

  /** The call was abandoned: it counts neither way, and frees its probe slot. */
  release(): void {
    if (this.#used) return;
    this.#used = true;
    this.#breaker.release(this.epoch);
  }
}
