/**
 * A retry budget, as Envoy's `retry_budget` and Linkerd's: retries in flight may be at most
 * `budgetPercent` of the requests in flight, but never fewer than `minRetryConcurrency`. When a
 * backend fails, every request would want a retry, tripling its load just when it can least take
 * it; the budget caps the extra load at a fraction, so retries cannot multiply an outage.
 *
 * Share one budget across everything that retries against the same backends. O(1), no allocation.
 */
import { checkKnownOptions, optionalNumber } from '../core/validate.js';

/** Options of {@link RetryBudget}. */
export interface RetryBudgetOptions {
  /** Retries in flight as a percentage of requests in flight. @default 20 */
  budgetPercent?: number;
  /** Retries always allowed in flight, whatever the percentage gives. @default 3 */
  minRetryConcurrency?: number;
}

/** Counters of {@link RetryBudget.stats}. */
export interface RetryBudgetStats {
  /** Requests in flight. */
  readonly active: number;
  /** Retries in flight. */
  readonly retrying: number;
  /** Retries refused because the budget was spent, since construction. */
  readonly exhausted: number;
}

/** Caps concurrent retries to a share of concurrent requests. */
export class RetryBudget {
  readonly #share: number;
  readonly #floor: number;
  #active = 0;
  #retrying = 0;
  #exhausted = 0;

  constructor(options: RetryBudgetOptions = {}) {
    checkKnownOptions(options, ['budgetPercent', 'minRetryConcurrency'], 'RetryBudget');
    this.#share = optionalNumber(options.budgetPercent, 'budgetPercent', 20, { min: 0, max: 100 }) / 100;
    this.#floor = optionalNumber(options.minRetryConcurrency, 'minRetryConcurrency', 3, {
      min: 0,
      integer: true,
    });
  }

  /** A request started. */
  begin(): void {
    this.#active++;
  }

  /** A request ended. */
  end(): void {
    if (this.#active > 0) this.#active--;
  }

  /** Takes a retry slot if the budget has one; counts a refusal otherwise. */
  tryRetry(): boolean {
    if (this.#retrying < Math.max(this.#floor, this.#share * this.#active)) {
      this.#retrying++;
      return true;
    }
    this.#exhausted++;
    return false;
  }

  /** A retry taken with {@link RetryBudget.tryRetry} ended. */
  retryDone(): void {
    if (this.#retrying > 0) this.#retrying--;
  }

  /** Counters now. */
  stats(): RetryBudgetStats {
    return { active: this.#active, retrying: this.#retrying, exhausted: this.#exhausted };
  }
}
