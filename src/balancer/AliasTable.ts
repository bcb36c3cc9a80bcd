/**
 * Walker's alias method (Vose's construction): draws an index with probability proportional to its
 * weight in O(1) from one random number, after an O(n) build. Used by the weighted random and
 * power-of-two-choices balancers.
 *
 * Source: M. D. Vose, "A linear algorithm for generating random numbers with a given distribution",
 * IEEE Transactions on Software Engineering 17(9), 1991.
 */

/** An O(1) sampler of indexes proportional to fixed weights. */
export class AliasTable {
  readonly #probability: Float64Array;
  readonly #alias: Uint32Array;

  /** @param weights finite numbers >= 0 with a positive sum */
  constructor(weights: ArrayLike<number>) {
    const n = weights.length;
    this.#probability = new Float64Array(n);
    this.#alias = new Uint32Array(n);
    let total = 0;
    for (let i = 0; i < n; i++) total += weights[i] as number;
    const scaled = new Float64Array(n);
    const small = new Uint32Array(n);
    const large = new Uint32Array(n);
    let smallCount = 0;
    let largeCount = 0;
    for (let i = 0; i < n; i++) {
      scaled[i] = ((weights[i] as number) * n) / total;
      if ((scaled[i] as number) < 1) small[smallCount++] = i;
      else large[largeCount++] = i;
    }
    while (smallCount > 0 && largeCount > 0) {
      const less = small[--smallCount] as number;
      const more = large[largeCount - 1] as number;
      this.#probability[less] = scaled[less] as number;
      this.#alias[less] = more;
      scaled[more] = (scaled[more] as number) + (scaled[less] as number) - 1;
      if ((scaled[more] as number) < 1) {
        largeCount--;
        small[smallCount++] = more;
      }
    }
    // What is left is 1 up to rounding error.
    while (largeCount > 0) this.#probability[large[--largeCount] as number] = 1;
    while (smallCount > 0) this.#probability[small[--smallCount] as number] = 1;
  }

  /** An index drawn with probability weight / total, from `u` uniform in [0, 1). */
  sample(u: number): number {
    const n = this.#probability.length;
    const scaled = u * n;
    let i = Math.floor(scaled);
    if (i >= n) i = n - 1;
    return scaled - i < (this.#probability[i] as number) ? i : (this.#alias[i] as number);
  }
}
