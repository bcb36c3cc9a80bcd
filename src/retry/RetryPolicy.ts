/**
 * Retries, done safely. A failed attempt is retried only when all of these hold:
 * - its failure is one `retryOn` names (`connect-failure`, `reset`, `timeout`, `5xx`,
 *   `gateway-error` for 502/503/504, `grpc-unavailable` for a gRPC Trailers-Only answer with
 *   status UNAVAILABLE, or explicit statuses);
 * - the call is idempotent, or the failure is one where the request never reached the upstream
 *   (`retryNonIdempotentOn`, connect failures by default);
 * - the upstream had not started its response (an error marked `responseStarted` is final);
 * - attempts remain, the caller has not aborted, and the retry budget has room.
 *
 * A *requeue* is apart from that: with `requeue: true` (a caller that sends each attempt to a different
 * endpoint, as a Cluster does), an attempt that provably never reached its upstream (the connection
 * was refused or timed out, or the request failed before it was written) is tried again at once, for
 * any method and failure list, bounded by the attempts but not by the retry budget: it added no load
 * to any backend (Finagle's `RequeueFilter`).
 *
 * Between attempts it waits with exponential backoff and full jitter (AWS Architecture Blog,
 * "Exponential Backoff and Jitter": a random delay in [0, min(maxMs, baseMs × 2^retry))), or as long
 * as the upstream's `Retry-After` asks, up to `maxRetryAfterMs` (longer, and it stops retrying), unless
 * the caller retries elsewhere (`honourRetryAfter: false`: a Retry-After speaks of the endpoint that
 * sent it, not of the next one).
 * Each attempt runs under its own `perTryTimeoutMs`. When retries run out, the last outcome stands:
 * a response is returned as it is (a 503 stays a 503), an error is thrown; when the budget refuses a
 * retry of an error, the call fails with `ERETRYBUDGET` (503), the error as its `cause`.
 *
 * Semantics follow Envoy's retry policy (retry_on, num_retries, per_try_timeout, retry budget) and
 * its defaults: base interval 25 ms, maximum 10 × base.
 */
import { EventEmitter } from 'eventemitter3';
import { type Clock, type RandomSource, systemClock, systemRandom } from '../core/clock.js';
import { type Duration, optionalDuration } from '../core/duration.js';
import { McgravityError } from '../core/errors.js';
import {
  type FailureKind,
  failureKind,
  headerOf,
  neverSent,
  responseStarted,
  retryAfterMs,
  statusOf,
} from '../core/failures.js';
import { abortReason, neverAborted } from '../core/signals.js';
import { checkKnownOptions, optionalFunction, optionalNumber } from '../core/validate.js';
import { RetryBudget, type RetryBudgetOptions } from './RetryBudget.js';

/** A failure a retry policy can act on. */
export type RetryCondition = FailureKind | '5xx' | 'gateway-error' | 'grpc-unavailable' | number;

/** Options of {@link RetryPolicy}. */
export interface RetryOptions {
  /** Attempts in all, the first included; 1 means no retry. @default 3 */
  attempts?: number;
  /** Time limit of each attempt; off unless set. */
  perTryTimeoutMs?: Duration;
  /** Failures that are retried. @default ['connect-failure', 'reset', 'gateway-error', 'grpc-unavailable'] */
  retryOn?: readonly RetryCondition[];
  /** Failures retried even for calls that are not idempotent. @default ['connect-failure'] */
  retryNonIdempotentOn?: readonly RetryCondition[];
  /** Exponential backoff with full jitter. @default { baseMs: 25, maxMs: 250 } */
  backoff?: { baseMs?: Duration; maxMs?: Duration };
  /** Longest `Retry-After` honoured; a longer one ends the retries. @default 10_000 */
  maxRetryAfterMs?: Duration;
  /**
   * Caps retries to a share of recent requests; share one instance across policies for the same
   * backends. @default 20 % of the requests of the last 10 s, plus 10 per second
   */
  budget?: RetryBudget | RetryBudgetOptions | false;
  /** Called with a response-like value that is dropped for a retry, to release it (e.g. drain its body). */
  onDiscard?: (value: unknown) => void | Promise<void>;
  /** Clock for backoff and per-try timeouts. @default systemClock */
  clock?: Clock;
  /** Jitter source. @default systemRandom */
  random?: RandomSource;
}

/** What each attempt is given. */
export interface AttemptContext {
  /** 1 for the first attempt. */
  readonly attempt: number;
  /** Aborted when the caller aborts or the per-try timeout passes. */
  readonly signal: AbortSignal;
}

/** Per-call options of {@link RetryPolicy.execute}. */
export interface RetryCallOptions {
  /** The call may be repeated safely (GET, PUT, DELETE…, or a call the caller vouches for). @default false */
  idempotent?: boolean;
  /** Aborts the call and any wait between attempts. */
  signal?: AbortSignal;
  /**
   * Asked before each retry: false ends the call with the outcome at hand (a cluster with no
   * endpoint left to try returns the last answer, not an error of its own).
   */
  canRetry?: () => boolean;
  /**
   * Each attempt goes to a different endpoint: an attempt that never reached its upstream is tried
   * again at once, outside the budget (see the module comment). @default false
   */
  requeue?: boolean;
  /** Wait as long as a retried answer's `Retry-After` asks. False when the retry goes elsewhere. @default true */
  honourRetryAfter?: boolean;
}

/** Why a retry happened. */
export type RetryReason = FailureKind | 'grpc-unavailable' | number;

/** Events of {@link RetryPolicy}. */
export interface RetryPolicyEvents {
  /** A retry is about to wait `delayMs` and then start attempt `attempt`. */
  retry: (info: { attempt: number; reason: RetryReason; delayMs: number }) => void;
  /** An attempt that never reached its upstream is tried again at once (outside the budget). */
  requeue: (info: { attempt: number }) => void;
  /** A retry was refused because the budget was spent. */
  'retry:budget-exhausted': (info: { attempt: number; reason: RetryReason }) => void;
}

/** Counters of {@link RetryPolicy.stats}. */
export interface RetryPolicyStats {
  readonly calls: number;
  readonly retries: number;
  /** Attempts tried again because the one before never reached its upstream. */
  readonly requeues: number;
  readonly budgetExhausted: number;
}

const KNOWN = [
  'attempts',
  'perTryTimeoutMs',
  'retryOn',
  'retryNonIdempotentOn',
  'backoff',
  'maxRetryAfterMs',
  'budget',
  'onDiscard',
  'clock',
  'random',
];

/** The HTTP methods RFC 9110 §9.2.2 defines as idempotent. */
export function isIdempotentMethod(method: string | undefined): boolean {
  switch ((method ?? 'GET').toUpperCase()) {
    case 'GET':
    case 'HEAD':
    case 'OPTIONS':
    case 'TRACE':
    case 'PUT':
    case 'DELETE':
      return true;
    default:
      return false;
  }
}

function checkConditions(value: unknown, option: string): readonly RetryCondition[] {
  if (!Array.isArray(value)) throw new TypeError(`${option} must be an array of retry conditions`);
  for (const condition of value) {
    const ok =
      condition === 'connect-failure' ||
      condition === 'reset' ||
      condition === 'timeout' ||
      condition === '5xx' ||
      condition === 'gateway-error' ||
      condition === 'grpc-unavailable' ||
      (typeof condition === 'number' && Number.isInteger(condition) && condition >= 100 && condition <= 599);
    if (!ok) {
      throw new RangeError(
        `${option} entries must be 'connect-failure', 'reset', 'timeout', '5xx', 'gateway-error', 'grpc-unavailable' or an HTTP status, got ${JSON.stringify(condition)}`,
      );
    }
  }
  return value;
}

function matches(conditions: readonly RetryCondition[], reason: RetryReason): boolean {
  for (const condition of conditions) {
    if (condition === reason) return true;
    if (typeof reason === 'number') {
      if (condition === '5xx' && reason >= 500 && reason <= 599) return true;
      if (condition === 'gateway-error' && (reason === 502 || reason === 503 || reason === 504)) return true;
    }
  }
  return false;
}

type Outcome<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: unknown };

/** Retries async work when, and only when, it is safe to. */
export class RetryPolicy extends EventEmitter<RetryPolicyEvents> {
  readonly #attempts: number;
  readonly #perTryTimeoutMs: number;
  readonly #retryOn: readonly RetryCondition[];
  readonly #retryNonIdempotentOn: readonly RetryCondition[];
  /** Per status 100–599: 1 when `retryOn` names it, so that most answers are ruled out by one read. */
  readonly #retriedStatuses = new Uint8Array(600);
  /** `retryOn` names gRPC's UNAVAILABLE, which comes in a 200's headers. */
  readonly #retriesGrpc: boolean;
  readonly #baseMs: number;
  readonly #maxBackoffMs: number;
  readonly #maxRetryAfterMs: number;
  readonly #budget: RetryBudget | undefined;
  readonly #onDiscard: ((value: unknown) => void | Promise<void>) | undefined;
  readonly #clock: Clock;
  readonly #random: RandomSource;
  #calls = 0;
  #retries = 0;
  #requeues = 0;
  #budgetExhausted = 0;

  constructor(options: RetryOptions = {}) {
    super();
    checkKnownOptions(options, KNOWN, 'RetryPolicy');
    this.#attempts = optionalNumber(options.attempts, 'attempts', 3, { min: 1, integer: true });
    this.#perTryTimeoutMs = optionalDuration(options.perTryTimeoutMs, 'perTryTimeoutMs', 0);
    this.#retryOn = checkConditions(
      options.retryOn ?? ['connect-failure', 'reset', 'gateway-error', 'grpc-unavailable'],
      'retryOn',
    );
    for (let status = 100; status < 600; status++)
      if (matches(this.#retryOn, status)) this.#retriedStatuses[status] = 1;
    this.#retriesGrpc = this.#retryOn.includes('grpc-unavailable');
    this.#retryNonIdempotentOn = checkConditions(
      options.retryNonIdempotentOn ?? ['connect-failure'],
      'retryNonIdempotentOn',
    );
    this.#baseMs = optionalDuration(options.backoff?.baseMs, 'backoff.baseMs', 25);
    this.#maxBackoffMs = optionalDuration(options.backoff?.maxMs, 'backoff.maxMs', this.#baseMs * 10);
    this.#maxRetryAfterMs = optionalDuration(options.maxRetryAfterMs, 'maxRetryAfterMs', 10_000);
    this.#onDiscard =
      options.onDiscard === undefined
        ? undefined
        : optionalFunction(options.onDiscard, 'onDiscard', () => {});
    this.#clock = options.clock ?? systemClock;
    this.#random = optionalFunction(options.random, 'random', systemRandom);
    const budget = options.budget;
    this.#budget =
      budget === false
        ? undefined
        : budget instanceof RetryBudget
          ? budget
          : new RetryBudget({ clock: this.#clock, ...(budget ?? {}) });
  }

  /** The per-attempt time limit in ms, 0 when off. */
  get perTryTimeoutMs(): number {
    return this.#perTryTimeoutMs;
  }

  /** The budget this policy draws retries from, if any. */
  get budget(): RetryBudget | undefined {
    return this.#budget;
  }

  /** Counters since construction. */
  stats(): RetryPolicyStats {
    return {
      calls: this.#calls,
      retries: this.#retries,
      requeues: this.#requeues,
      budgetExhausted: this.#budgetExhausted,
    };
  }

  /**
   * Runs `fn`, retrying it as the policy allows. Resolves with the last value, or rejects with the
   * last error; rejects with the abort reason when the caller aborts.
   */
  async execute<T>(fn: (ctx: AttemptContext) => Promise<T>, options: RetryCallOptions = {}): Promise<T> {
    const signal = options.signal ?? neverAborted;
    this.#calls++;
    this.#budget?.deposit();
    if (signal.aborted) throw abortReason(signal);
    let first: Outcome<T>;
    try {
      first = { ok: true, value: await this.#attempt(fn, 1, signal) };
    } catch (error) {
      first = { ok: false, error };
    }
    return this.#continue(first, fn, options);
  }

  /**
   * Whether a first attempt that produced `value` (a response) would be retried, before budget and
   * attempt limits: lets a caller run the first attempt itself and call {@link RetryPolicy.resume}
   * only when it must, keeping the retry machinery off the path of the requests that succeed.
   */
  wouldRetry(value: unknown, idempotent: boolean): boolean {
    // Nearly every answer: a status no condition names, and no gRPC UNAVAILABLE to look for.
    const status = statusOf(value);
    if (
      status !== undefined &&
      this.#retriedStatuses[status] === 0 &&
      (!this.#retriesGrpc || headerOf(value, 'grpc-status') !== '14')
    )
      return false;
    return this.#retryReason({ ok: true, value }, idempotent) !== undefined;
  }

  /**
   * Continues after a first attempt the caller ran itself, with its outcome. The caller deposits the
   * request in the budget (`budget.deposit()` before the first attempt), so that the budget's share is
   * of every request, not only of those being retried.
   */
  resume<T>(
    first: { readonly value: T } | { readonly error: unknown },
    fn: (ctx: AttemptContext) => Promise<T>,
    options: RetryCallOptions = {},
  ): Promise<T> {
    this.#calls++;
    return this.#continue(
      'error' in first ? { ok: false, error: first.error } : { ok: true, value: first.value },
      fn,
      options,
    );
  }

  async #continue<T>(
    first: Outcome<T>,
    fn: (ctx: AttemptContext) => Promise<T>,
    options: RetryCallOptions,
  ): Promise<T> {
    const signal = options.signal ?? neverAborted;
    const idempotent = options.idempotent === true;
    const budget = this.#budget;
    let outcome = first;
    for (let attempt = 1; ; attempt++) {
      if (attempt > 1) {
        if (signal.aborted) throw abortReason(signal);
        try {
          outcome = { ok: true, value: await this.#attempt(fn, attempt, signal) };
        } catch (error) {
          outcome = { ok: false, error };
        }
      }
      if (signal.aborted && !outcome.ok) throw abortReason(signal);
      const last = attempt >= this.#attempts || signal.aborted;
      if (options.requeue === true && !outcome.ok && neverSent(outcome.error)) {
        if (last || options.canRetry?.() === false) throw outcome.error;
        this.#requeues++;
        this.emit('requeue', { attempt: attempt + 1 });
        continue;
      }
      const reason = this.#retryReason(outcome, idempotent);
      if (reason === undefined || last || options.canRetry?.() === false) return settle(outcome);
      let delayMs = this.#backoff(attempt);
      if (outcome.ok && options.honourRetryAfter !== false) {
        const asked = retryAfterMs(headerOf(outcome.value, 'retry-after'));
        if (asked !== undefined) {
          if (asked > this.#maxRetryAfterMs) return outcome.value;
          delayMs = asked;
        }
      }
      if (budget !== undefined && !budget.tryWithdraw()) {
        this.#budgetExhausted++;
        this.emit('retry:budget-exhausted', { attempt: attempt + 1, reason });
        if (outcome.ok) return outcome.value;
        throw new McgravityError(
          'ERETRYBUDGET',
          `retry budget spent: attempt ${attempt} failed (${reason}) and was not retried`,
          { cause: outcome.error },
        );
      }
      this.#retries++;
      this.emit('retry', { attempt: attempt + 1, reason, delayMs });
      if (outcome.ok) await this.#onDiscard?.(outcome.value);
      await this.#sleep(delayMs, signal);
    }
  }

  /** The failure that makes `outcome` worth retrying, or undefined. */
  #retryReason(outcome: Outcome<unknown>, idempotent: boolean): RetryReason | undefined {
    let reason: RetryReason | undefined;
    if (outcome.ok) {
      // gRPC's UNAVAILABLE arrives with status 200, in a Trailers-Only answer's headers.
      reason = headerOf(outcome.value, 'grpc-status') === '14' ? 'grpc-unavailable' : statusOf(outcome.value);
    } else {
      if (responseStarted(outcome.error)) return undefined;
      reason = failureKind(outcome.error);
    }
    if (reason === undefined || !matches(this.#retryOn, reason)) return undefined;
    if (!idempotent && !matches(this.#retryNonIdempotentOn, reason)) return undefined;
    return reason;
  }

  #backoff(attempt: number): number {
    const ceiling = Math.min(this.#maxBackoffMs, this.#baseMs * 2 ** (attempt - 1));
    return this.#random() * ceiling;
  }

  async #attempt<T>(
    fn: (ctx: AttemptContext) => Promise<T>,
    attempt: number,
    callerSignal: AbortSignal,
  ): Promise<T> {
    if (this.#perTryTimeoutMs <= 0) return fn({ attempt, signal: callerSignal });
    const controller = new AbortController();
    const timeoutMs = this.#perTryTimeoutMs;
    const onCallerAbort = () => controller.abort(callerSignal.reason);
    if (callerSignal !== neverAborted) callerSignal.addEventListener('abort', onCallerAbort, { once: true });
    let timer: unknown;
    const timedOut = new Promise<never>((_, reject) => {
      timer = this.#clock.setTimeout(() => {
        const error = new McgravityError(
          'EUPSTREAMTIMEOUT',
          `attempt ${attempt} timed out after ${timeoutMs} ms`,
        );
        controller.abort(error);
        reject(error);
      }, timeoutMs);
    });
    try {
      return await Promise.race([fn({ attempt, signal: controller.signal }), timedOut]);
    } finally {
      this.#clock.clearTimeout(timer);
      if (callerSignal !== neverAborted) callerSignal.removeEventListener('abort', onCallerAbort);
    }
  }

  #sleep(ms: number, signal: AbortSignal): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    // Many retries wait at once without a caller's signal: listening on the shared never-aborted
    // one would pile listeners on it for nothing.
    if (signal === neverAborted) {
      return new Promise((resolve) => {
        this.#clock.setTimeout(resolve, ms);
      });
    }
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        this.#clock.clearTimeout(timer);
        reject(abortReason(signal));
      };
      const timer = this.#clock.setTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}

function settle<T>(outcome: Outcome<T>): T {
  if (outcome.ok) return outcome.value;
  throw outcome.error;
}
