/**
 * Peak-EWMA of response time, as Finagle's and Linkerd's latency-aware balancers keep it: a sample
 * above the estimate replaces it at once (the peak), a sample below pulls it down by an exponential
 * weight that depends on the time since the previous sample; with no samples the estimate decays
 * towards 0, so an endpoint that was slow and got no traffic is tried again.
 *
 * Unlike Finagle, reading never changes the estimate, so the value does not depend on how often it
 * is read. O(1), no allocation.
 */
import { type Clock, systemClock } from './clock.js';
import { type Duration, optionalDuration } from './duration.js';

/** Options of {@link PeakEwma}. */
export interface PeakEwmaEstimateOptions {
  /** Time constant of the decay, in milliseconds or as a duration string. @default 10_000 */
  decayMs?: Duration;
  /** Clock used to time the decay. @default systemClock */
  clock?: Clock;
}

/** A decaying peak-EWMA latency estimate in milliseconds. */
export class PeakEwma {
  readonly #tauMs: number;
  readonly #clock: Clock;
  #estimate = 0;
  #stamp: number;

  constructor(options: PeakEwmaEstimateOptions = {}) {
    this.#tauMs = optionalDuration(options.decayMs, 'decayMs', 10_000);
    if (this.#tauMs <= 0) throw new RangeError(`decayMs must be > 0, got ${options.decayMs}`);
    this.#clock = options.clock ?? systemClock;
    this.#stamp = this.#clock.now();
  }

  /** Records one response time in milliseconds (observed at `now`, read from the clock if omitted). */
  observe(rttMs: number, now = this.#clock.now()): void {
    const elapsed = Math.max(0, now - this.#stamp);
    this.#stamp = now;
    if (rttMs > this.#estimate) {
      this.#estimate = rttMs;
    } else {
      const w = Math.exp(-elapsed / this.#tauMs);
      this.#estimate = this.#estimate * w + rttMs * (1 - w);
    }
  }

  /** The estimate now, decayed for the time since the last sample; 0 before any sample. */
  get value(): number {
    if (this.#estimate === 0) return 0;
    const elapsed = this.#clock.now() - this.#stamp;
    return elapsed <= 0 ? this.#estimate : this.#estimate * Math.exp(-elapsed / this.#tauMs);
  }
}
