/**
 * A retry budget over time, as Finagle's `RetryBudget` and Linkerd's: retries may be at most
 * `budgetPercent` of the requests of the last `ttlMs`, plus a floor of `minRetriesPerSecond` so that a
 * quiet client can still retry. When a backend fails, every request would want a retry, tripling its
 * load just when it can least take it; the budget caps the extra load at a fraction, so retries
 * cannot multiply an outage.
 *
 * Why over time and not over requests in flight (Envoy's `retry_budget`): a backend that dies makes a
 * burst of attempts fail in the same millisecond. Counted against what is in flight at that instant,
 * most of the burst is refused although the requests of the last seconds left plenty of room; counted
 * against recent traffic, the burst is absorbed and a sustained storm is still capped.
 *
 * Every request deposits `budgetPercent / 100` of a retry, every retry withdraws one; both expire
 * after `ttlMs`. The sum lives in a ring of ten slots (a slot is `ttlMs / 10`), so deposits and
 * withdrawals are O(1) and allocate nothing. Requeues (attempts that never reached a backend) do not
 * draw on the budget: see RetryPolicy.
 *
 * Share one budget across everything that retries against the same backends.
 */
import { type Clock, systemClock } from '../core/clock.js';
import { type Duration, optionalDuration } from '../core/duration.js';
import { checkKnownOptions, optionalNumber } from '../core/validate.js';

/** Options of {@link RetryBudget}. */
export interface RetryBudgetOptions {
  /** Retries as a percentage of the requests of the last `ttlMs`. @default 20 */
  budgetPercent?: number;
  /** How long a request's deposit (and a retry's withdrawal) counts. @default 10_000 */
  ttlMs?: Duration;
  /** Retries allowed per second whatever the traffic, averaged over `ttlMs`. @default 10 */
  minRetriesPerSecond?: number;
  /** Time source. @default systemClock */
  clock?: Clock;
}

/** Counters of {@link RetryBudget.stats}. */
export interface RetryBudgetStats {
  /** Retries the budget would allow now. */
  readonly available: number;
  /** Requests deposited over the last `ttlMs`. */
  readonly requests: number;
  /** Retries withdrawn over the last `ttlMs`. */
  readonly retries: number;
  /** Retries refused because the budget was spent, since construction. */
  readonly exhausted: number;
}

const SLOTS = 10;

/** Caps retries to a share of recent requests, plus a floor per second. */
export class RetryBudget {
  readonly #share: number;
  readonly #reserve: number;
  readonly #slotMs: number;
  readonly #clock: Clock;
  /** Requests and retries per slot of the ring; the current slot is `#slot % SLOTS`. */
  readonly #requests = new Float64Array(SLOTS);
  readonly #retries = new Float64Array(SLOTS);
  #requestSum = 0;
  #retrySum = 0;
  /** The absolute slot number (time / slotMs) that the ring's current slot holds. */
  #slot: number;
  #exhausted = 0;

  constructor(options: RetryBudgetOptions = {}) {
    if (options !== null && typeof options === 'object' && 'minRetryConcurrency' in options) {
      throw new TypeError(
        'RetryBudget: minRetryConcurrency is gone: the budget is over time now; use minRetriesPerSecond',
      );
    }
    checkKnownOptions(options, ['budgetPercent', 'ttlMs', 'minRetriesPerSecond', 'clock'], 'RetryBudget');
    this.#share = optionalNumber(options.budgetPercent, 'budgetPercent', 20, { min: 0, max: 1000 }) / 100;
    const ttlMs = optionalDuration(options.ttlMs, 'ttlMs', 10_000);
    if (ttlMs < 1000) throw new RangeError(`ttlMs must be at least 1000, got ${ttlMs}`);
    const perSecond = optionalNumber(options.minRetriesPerSecond, 'minRetriesPerSecond', 10, { min: 0 });
    this.#reserve = (perSecond * ttlMs) / 1000;
    this.#slotMs = ttlMs / SLOTS;
    this.#clock = options.clock ?? systemClock;
    this.#slot = Math.floor(this.#clock.now() / this.#slotMs);
  }

  /** A request started: it adds `budgetPercent / 100` of a retry to the budget for `ttlMs`. */
  deposit(): void {
    this.#advance();
    const i = this.#slot % SLOTS;
    this.#requests[i] = (this.#requests[i] as number) + 1;
    this.#requestSum++;
  }

  /** Takes one retry from the budget if it has one; counts a refusal otherwise. */
  tryWithdraw(): boolean {
    this.#advance();
    if (this.#available() < 1) {
      this.#exhausted++;
      return false;
    }
    const i = this.#slot % SLOTS;
    this.#retries[i] = (this.#retries[i] as number) + 1;
    this.#retrySum++;
    return true;
  }

  /** Counters now. */
  stats(): RetryBudgetStats {
    this.#advance();
    return {
      available: Math.max(0, Math.floor(this.#available())),
      requests: this.#requestSum,
      retries: this.#retrySum,
      exhausted: this.#exhausted,
    };
  }

  #available(): number {
    return this.#reserve + this.#share * this.#requestSum - this.#retrySum;
  }

  /** Moves the ring to now, dropping the slots that have expired. */
  #advance(): void {
    const slot = Math.floor(this.#clock.now() / this.#slotMs);
    if (slot <= this.#slot) return;
    const steps = Math.min(slot - this.#slot, SLOTS);
    for (let step = 1; step <= steps; step++) {
      const i = (this.#slot + step) % SLOTS;
      this.#requests[i] = 0;
      this.#retries[i] = 0;
    }
    this.#slot = slot;
    // Summed again rather than decremented, so floating error never builds up.
    let requests = 0;
    let retries = 0;
    for (let i = 0; i < SLOTS; i++) {
      requests += this.#requests[i] as number;
      retries += this.#retries[i] as number;
    }
    this.#requestSum = requests;
    this.#retrySum = retries;
  }
}
