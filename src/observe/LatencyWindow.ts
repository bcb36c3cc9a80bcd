/**
 * Latency percentiles and request rate over a recent window, not since boot: two t-digests, the
 * current one and the one before it, rotated every `windowMs`. Percentiles read both, so they cover
 * the last one to two windows; a backend that was slow an hour ago does not look slow now.
 *
 * Recording is a typed-array write (the merging t-digest buffers samples and merges them in
 * batches), so every sample counts, with no allocation on the request path. Reading merges the two
 * digests (not on the request path).
 */
import type { Clock } from '../core/clock.js';
import { TDigest } from './TDigest.js';

/** Percentiles in milliseconds; 0 when nothing was recorded in the window. */
export interface LatencySummary {
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  /** Requests per second over the window. */
  readonly rps: number;
  /** Samples the summary is based on. */
  readonly count: number;
}

/** Recent latency and rate of one endpoint or cluster. */
export class LatencyWindow {
  readonly #windowMs: number;
  readonly #clock: Clock;
  #current = new TDigest();
  #previous = new TDigest();
  #windowStart: number;

  constructor(windowMs: number, clock: Clock) {
    this.#windowMs = windowMs;
    this.#clock = clock;
    this.#windowStart = clock.now();
  }

  /** Records one response time, observed at `now`. */
  record(ms: number, now = this.#clock.now()): void {
    if (now - this.#windowStart >= this.#windowMs) this.#rotate(now);
    this.#current.add(ms);
  }

  /** Percentiles and rate over the current and previous windows. */
  summary(): LatencySummary {
    const now = this.#clock.now();
    if (now - this.#windowStart >= this.#windowMs) this.#rotate(now);
    const previousCount = this.#previous.count;
    const count = this.#current.count + previousCount;
    const elapsedMs = now - this.#windowStart + (previousCount > 0 ? this.#windowMs : 0);
    const rps = elapsedMs > 0 ? (count * 1000) / elapsedMs : 0;
    if (count === 0) return { p50: 0, p95: 0, p99: 0, rps: 0, count: 0 };
    const merged = new TDigest();
    merged.addDigest(this.#previous);
    merged.addDigest(this.#current);
    return { p50: merged.quantile(0.5), p95: merged.quantile(0.95), p99: merged.quantile(0.99), rps, count };
  }

  #rotate(now: number): void {
    const windows = Math.floor((now - this.#windowStart) / this.#windowMs);
    // The digest two windows back is reused as the new current one: rotation allocates nothing.
    const stale = this.#previous;
    stale.reset();
    if (windows === 1) {
      this.#previous = this.#current;
    } else {
      this.#current.reset();
      this.#previous = this.#current;
    }
    this.#current = stale;
    this.#windowStart += windows * this.#windowMs;
  }
}
