/**
 * Success and failure counts over the last `windowMs`, in `buckets` time slices (a ring buffer, as
 * Hystrix and resilience4j keep theirs): recording is O(1), reading the totals O(1), and a bucket
 * that has aged out is subtracted when time moves past it. No allocation after construction.
 */
export class RollingWindow {
  readonly #bucketMs: number;
  readonly #successes: Float64Array;
  readonly #failures: Float64Array;
  readonly #epochs: Float64Array;
  #successTotal = 0;
  #failureTotal = 0;
  #current = Number.NEGATIVE_INFINITY;

  constructor(windowMs: number, buckets = 10) {
    this.#bucketMs = windowMs / buckets;
    this.#successes = new Float64Array(buckets);
    this.#failures = new Float64Array(buckets);
    this.#epochs = new Float64Array(buckets).fill(Number.NEGATIVE_INFINITY);
  }

  /** Counts one outcome at time `now`. */
  record(success: boolean, now: number): void {
    const slot = this.#advance(now);
    if (success) {
      this.#successes[slot] = (this.#successes[slot] as number) + 1;
      this.#successTotal++;
    } else {
      this.#failures[slot] = (this.#failures[slot] as number) + 1;
      this.#failureTotal++;
    }
  }

  /** Successes in the window ending at `now`. */
  successes(now: number): number {
    this.#advance(now);
    return this.#successTotal;
  }

  /** Failures in the window ending at `now`. */
  failures(now: number): number {
    this.#advance(now);
    return this.#failureTotal;
  }

  /** Forgets everything. */
  reset(): void {
    this.#successes.fill(0);
    this.#failures.fill(0);
    this.#epochs.fill(Number.NEGATIVE_INFINITY);
    this.#successTotal = 0;
    this.#failureTotal = 0;
    this.#current = Number.NEGATIVE_INFINITY;
  }

  // Moves to the bucket of `now`, dropping buckets older than the window; returns its slot.
  #advance(now: number): number {
    const epoch = Math.floor(now / this.#bucketMs);
    const size = this.#epochs.length;
    const slot = ((epoch % size) + size) % size;
    if (epoch === this.#current) return slot;
    this.#current = epoch;
    for (let i = 0; i < size; i++) {
      if ((this.#epochs[i] as number) > epoch - size) continue;
      this.#successTotal -= this.#successes[i] as number;
      this.#failureTotal -= this.#failures[i] as number;
      this.#successes[i] = 0;
      this.#failures[i] = 0;
      this.#epochs[i] = i === slot ? epoch : Number.NEGATIVE_INFINITY;
    }
    this.#epochs[slot] = epoch;
    return slot;
  }
}
