/**
 * How a cluster call retries: the first attempt runs outside the retry machinery (most calls
 * succeed, and pay nothing for it), which only a failure or a retryable answer enters. Each attempt
 * goes to an endpoint not tried yet, so the policy requeues attempts that never reached a backend
 * (outside the retry budget) and does not wait out a `Retry-After` (the endpoint that sent it cools
 * down instead; the next try goes elsewhere). Retries stop when no endpoint is left to try; a retry
 * that still finds none (a race) surfaces the failure that made it retry (a refused connection,
 * 502), not the empty cluster (503).
 */
import { isMcgravityError } from '../core/errors.js';
import { neverAborted } from '../core/signals.js';
import type { RetryCallOptions, RetryPolicy } from '../retry/RetryPolicy.js';

/**
 * Whether a call may be sent again: fixed for a body that can be replayed (or none), and, for a
 * stream that keeps a copy, decided when asked (it becomes true once the stream has ended whole).
 */
export type Idempotence = boolean | (() => boolean);

export function idempotenceOf(value: Idempotence): boolean {
  return typeof value === 'function' ? value() : value;
}

/** One call's attempt function and what its retries need to know. */
export interface RetryingCall<T> {
  readonly attempt: (signal: AbortSignal) => Promise<T>;
  readonly idempotent: boolean;
  readonly signal: AbortSignal | undefined;
  /** Endpoints tried so far (the attempts add to it). */
  readonly tried: ReadonlySet<string>;
  /** How many of `tried` the caller excluded before the first attempt (the rest are attempts). */
  readonly excluded: number;
  /** Pinned to one endpoint (a session's owner): never retried elsewhere. */
  readonly pinned: boolean;
}

/** True when an eligible endpoint is not in `tried`. */
export type UntriedLeft = (tried: ReadonlySet<string>) => boolean;

/** Runs `call` under `retry` (or once, without a policy). */
export function withRetries<T>(
  retry: RetryPolicy | undefined,
  call: RetryingCall<T>,
  untriedLeft: UntriedLeft,
): Promise<T> {
  if (retry === undefined) return call.attempt(call.signal ?? neverAborted);
  if (retry.perTryTimeoutMs > 0) return retrying(retry, undefined, call, untriedLeft);
  // The request still deposits in the retry budget, which is a share of all requests.
  retry.budget?.deposit();
  return call.attempt(call.signal ?? neverAborted).then(
    (value) =>
      retry.wouldRetry(value, call.idempotent) ? retrying(retry, { value }, call, untriedLeft) : value,
    (error: unknown) => retrying<T>(retry, { error }, call, untriedLeft),
  );
}

/** The retry machinery, entered after a first attempt that failed (or before any, with a per-try timeout). */
export function retrying<T>(
  retry: RetryPolicy,
  first: { readonly value: T } | { readonly error: unknown } | undefined,
  call: RetryingCall<T>,
  untriedLeft: UntriedLeft,
): Promise<T> {
  let lastFailure =
    first !== undefined && 'error' in first && !isMcgravityError(first.error, 'ENOUPSTREAM')
      ? first.error
      : undefined;
  const again = ({ signal }: { signal: AbortSignal }): Promise<T> =>
    call.attempt(signal).catch((error: unknown) => {
      if (!isMcgravityError(error, 'ENOUPSTREAM')) lastFailure = error;
      throw error;
    });
  const options: RetryCallOptions = {
    idempotent: call.idempotent,
    canRetry: () => !call.pinned && untriedLeft(call.tried),
    requeue: true,
    honourRetryAfter: false,
  };
  if (call.signal !== undefined) options.signal = call.signal;
  const run = first === undefined ? retry.execute(again, options) : retry.resume(first, again, options);
  return run.catch((error: unknown) => {
    const failure = isMcgravityError(error, 'ENOUPSTREAM') && lastFailure !== undefined ? lastFailure : error;
    countAttempts(failure, call.tried.size - call.excluded);
    throw failure;
  });
}

/**
 * Records on a call's final error how many tries were made: {@link McgravityError.attempts}, or a
 * non-enumerable `attempts` on another error (a connection error as undici raised it).
 */
function countAttempts(error: unknown, attempts: number): void {
  if (isMcgravityError(error)) error.attempts = attempts;
  else if (error instanceof Error)
    Object.defineProperty(error, 'attempts', { value: attempts, configurable: true, writable: true });
}

/** The tries recorded on a cluster call's error; undefined when it went through no retries. */
export function attemptsOf(error: unknown): number | undefined {
  const attempts = (error as { attempts?: unknown } | null)?.attempts;
  return typeof attempts === 'number' ? attempts : undefined;
}
