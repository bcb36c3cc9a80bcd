/**
 * A merging t-digest (Dunning & Ertl, "Computing Extremely Accurate Quantiles Using t-Digests",
 * 2019): a sketch of a distribution as at most about `compression` centroids (mean, weight), small
 * near the tails and large in the middle, so that p99 and p999 stay accurate in little memory.
 *
 * Samples go into a buffer (a typed array write, no allocation); every `bufferSize` samples the
 * buffer is sorted and merged with the centroids in one pass, under the k1 scale function
 * k(q) = δ/2π · asin(2q − 1): a centroid may grow while it spans at most one unit of k. Adding is
 * amortised O(log bufferSize); a quantile is O(centroids). Memory is fixed at construction.
 *
 * This replaces the `tdigest` package on the request path, whose tree-based insert cost tens of
 * thousands of instructions per sample (and allocated per sample).
 */

/** Options of {@link TDigest}. */
export interface TDigestOptions {
  /** δ: about the number of centroids kept; larger is more accurate. @default 100 */
  compression?: number;
  /** Samples buffered between merges. @default 5 × compression */
  bufferSize?: number;
}

/** A mergeable sketch of a distribution, for quantiles; see the module comment. */
export class TDigest {
  readonly #compression: number;
  // Centroids, sorted by mean: two sets of arrays, one written while the other is read in a merge.
  #means: Float64Array;
  #weights: Float64Array;
  #spareMeans: Float64Array;
  #spareWeights: Float64Array;
  #centroids = 0;
  #totalWeight = 0;
  readonly #buffer: Float64Array;
  #buffered = 0;
  #min = Number.POSITIVE_INFINITY;
  #max = Number.NEGATIVE_INFINITY;

  constructor(options: TDigestOptions = {}) {
    const compression = options.compression ?? 100;
    if (!Number.isFinite(compression) || compression < 10)
      throw new RangeError(`compression must be a number >= 10, got ${compression}`);
    const bufferSize = options.bufferSize ?? Math.ceil(5 * compression);
    if (!Number.isInteger(bufferSize) || bufferSize < 1)
      throw new RangeError(`bufferSize must be an integer >= 1, got ${bufferSize}`);
    this.#compression = compression;
    // Any two neighbours of a merge's output span more than one unit of k1 (δ/2 in all), so at
    // most δ + 1 centroids remain; room for a merge's input besides.
    const capacity = Math.ceil(compression) + 2;
    this.#means = new Float64Array(capacity + bufferSize);
    this.#weights = new Float64Array(capacity + bufferSize);
    this.#spareMeans = new Float64Array(capacity + bufferSize);
    this.#spareWeights = new Float64Array(capacity + bufferSize);
    this.#buffer = new Float64Array(bufferSize);
  }

  /** Samples (total weight) seen. */
  get count(): number {
    return this.#totalWeight + this.#buffered;
  }

  /** Centroids held once the buffer is merged: at most δ + 1. */
  get centroidCount(): number {
    this.#flush();
    return this.#centroids;
  }

  /** Adds one sample. */
  add(value: number): void {
    if (Number.isNaN(value)) return;
    this.#buffer[this.#buffered++] = value;
    if (value < this.#min) this.#min = value;
    if (value > this.#max) this.#max = value;
    if (this.#buffered === this.#buffer.length) this.#flush();
  }

  /** Adds every centroid of `other` (merging two digests; not for the request path). */
  addDigest(other: TDigest): void {
    other.#flush();
    if (other.#centroids === 0) return;
    this.#flush();
    if (other.#min < this.#min) this.#min = other.#min;
    if (other.#max > this.#max) this.#max = other.#max;
    this.#merge(other.#means, other.#weights, other.#centroids, other.#totalWeight);
  }

  /**
   * The value below which a fraction `q` (0..1) of the samples fall, interpolated between
   * centroids; NaN when the digest is empty.
   */
  quantile(q: number): number {
    this.#flush();
    const n = this.#centroids;
    if (n === 0) return Number.NaN;
    if (q <= 0) return this.#min;
    if (q >= 1) return this.#max;
    const means = this.#means;
    const weights = this.#weights;
    if (n === 1) return means[0] as number;
    const target = q * this.#totalWeight;
    // Each centroid's weight is centred on its mean; below the first centre and above the last, the
    // estimate runs to min and max.
    const firstHalf = (weights[0] as number) / 2;
    if (target < firstHalf) {
      return this.#min + ((means[0] as number) - this.#min) * (target / firstHalf);
    }
    let cumulative = firstHalf;
    for (let i = 0; i < n - 1; i++) {
      const span = ((weights[i] as number) + (weights[i + 1] as number)) / 2;
      if (target < cumulative + span) {
        const left = means[i] as number;
        const right = means[i + 1] as number;
        return left + (right - left) * ((target - cumulative) / span);
      }
      cumulative += span;
    }
    const lastHalf = (weights[n - 1] as number) / 2;
    const last = means[n - 1] as number;
    return last + (this.#max - last) * Math.min(1, (target - cumulative) / lastHalf);
  }

  /** Forgets every sample. */
  reset(): void {
    this.#centroids = 0;
    this.#totalWeight = 0;
    this.#buffered = 0;
    this.#min = Number.POSITIVE_INFINITY;
    this.#max = Number.NEGATIVE_INFINITY;
  }

  /** Merges the buffered samples into the centroids. */
  #flush(): void {
    const buffered = this.#buffered;
    if (buffered === 0) return;
    this.#buffered = 0;
    this.#merge(this.#buffer.subarray(0, buffered).sort(), undefined, buffered, buffered);
  }

  /**
   * Merges `count` points sorted by mean (with `weights`, or 1 each) with the centroids into the spare
   * arrays, then compresses them there into the new centroids.
   */
  #merge(
    addedMeans: Float64Array,
    addedWeights: Float64Array | undefined,
    count: number,
    addedWeight: number,
  ): void {
    const centroids = this.#centroids;
    const n = centroids + count;
    if (n > this.#spareMeans.length) {
      this.#spareMeans = new Float64Array(n);
      this.#spareWeights = new Float64Array(n);
    }
    const means = this.#spareMeans;
    const weights = this.#spareWeights;
    let i = 0;
    let j = 0;
    for (let k = 0; k < n; k++) {
      if (j >= count || (i < centroids && (this.#means[i] as number) <= (addedMeans[j] as number))) {
        means[k] = this.#means[i] as number;
        weights[k] = this.#weights[i++] as number;
      } else {
        means[k] = addedMeans[j] as number;
        weights[k] = addedWeights === undefined ? 1 : (addedWeights[j] as number);
        j++;
      }
    }
    this.#spareMeans = this.#means;
    this.#spareWeights = this.#weights;
    this.#compress(means, weights, n, this.#totalWeight + addedWeight);
  }

  /**
   * Merges neighbours of the sorted (means, weights) while each centroid spans at most one unit of
   * k1, writing the result as this digest's centroids.
   */
  #compress(means: Float64Array, weights: Float64Array, n: number, total: number): void {
    const delta = this.#compression;
    let out = 0;
    let mean = means[0] as number;
    let weight = weights[0] as number;
    let before = 0; // weight of the centroids already written
    let limit = total * kInverse(k(0, delta) + 1, delta);
    for (let i = 1; i < n; i++) {
      const nextWeight = weights[i] as number;
      if (before + weight + nextWeight <= limit) {
        weight += nextWeight;
        mean += ((means[i] as number) - mean) * (nextWeight / weight);
      } else {
        means[out] = mean;
        weights[out++] = weight;
        before += weight;
        limit = total * kInverse(k(before / total, delta) + 1, delta);
        mean = means[i] as number;
        weight = nextWeight;
      }
    }
    means[out] = mean;
    weights[out++] = weight;
    this.#means = means;
    this.#weights = weights;
    this.#centroids = out;
    this.#totalWeight = total;
  }
}

/** The k1 scale function: δ/2π · asin(2q − 1). */
function k(q: number, delta: number): number {
  return (delta / (2 * Math.PI)) * Math.asin(2 * q - 1);
}

/** The inverse of k1, clamped to q ≤ 1. */
function kInverse(value: number, delta: number): number {
  if (value >= delta / 4) return 1;
  return (Math.sin((value * 2 * Math.PI) / delta) + 1) / 2;
}
