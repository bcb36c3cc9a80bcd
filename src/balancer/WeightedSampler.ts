/**
 * Draws an index with probability proportional to its weight, in O(1) from one random number, after
 * an O(n) build. Used by the weighted random and power-of-two-choices balancers. Three paths, chosen
 * once in the constructor:
 *
 * - equal weights: the index is `floor(u × n)`;
 * - small integer weights (a total of at most 16,384 after dividing by their GCD, the usual case) take
 *   a table with each index repeated `weight` times, sampled with one load;
 * - any other weights: Walker's alias method (Vose's construction).
 *
 * Source: M. D. Vose, "A linear algorithm for generating random numbers with a given distribution",
 * IEEE Transactions on Software Engineering 17(9), 1991.
 */

import type { Endpoint } from '../core/endpoint.js';
import { integerWeightDivisor, negativeBit, uniformWeights } from './membership.js';

/** An O(1) sampler of indexes proportional to fixed weights. */
export class WeightedSampler {
  /** True when all weights are equal: every index is equally likely. */
  readonly uniform: boolean;
  readonly #size: number;
  readonly #probability: Float64Array;
  readonly #alias: Uint32Array;
  readonly #slots: Uint32Array | undefined;

  /** A sampler over the endpoints' weights. */
  static ofEndpoints(endpoints: readonly Endpoint[]): WeightedSampler {
    return new WeightedSampler(endpoints.map((endpoint) => endpoint.weight));
  }

  /** @param weights finite numbers >= 0 with a positive sum (or none at all) */
  constructor(weights: ArrayLike<number>) {
    this.#size = weights.length;
    this.uniform = uniformWeights(weights);
    this.#slots = this.uniform ? undefined : slotTable(weights);
    const n = this.uniform || this.#slots !== undefined ? 0 : weights.length;
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
    if (this.uniform) return Math.min(Math.floor(u * this.#size), this.#size - 1);
    const slots = this.#slots;
    if (slots !== undefined) return slots[Math.floor(u * slots.length)] as number;
    const n = this.#probability.length;
    const scaled = u * n;
    const i = Math.min(Math.floor(scaled), n - 1);
    const alias = this.#alias[i] as number;
    // Keep i when the remainder falls under its probability, else take its alias; branch-free,
    // since the outcome is a coin flip no branch predictor can learn.
    return alias + (i - alias) * negativeBit(scaled - i - (this.#probability[i] as number));
  }
}

const MAX_SLOTS = 16_384;

// Each index repeated weight / GCD times, or undefined when the weights are not small integers.
function slotTable(weights: ArrayLike<number>): Uint32Array | undefined {
  const divisor = integerWeightDivisor(weights);
  if (divisor === 0) return undefined;
  let total = 0;
  for (let i = 0; i < weights.length; i++) total += (weights[i] as number) / divisor;
  if (total > MAX_SLOTS) return undefined;
  const slots = new Uint32Array(total);
  let at = 0;
  for (let i = 0; i < weights.length; i++) {
    for (let k = (weights[i] as number) / divisor; k > 0; k--) slots[at++] = i;
  }
  return slots;
}
