/**
 * The power of d choices: draw d endpoints at random (proportionally to weight) and take the one with
 * the lowest cost. With d = 2 the maximum load falls from Θ(log n / log log n) for one random choice
 * to Θ(log log n) (Mitzenmacher, "The Power of Two Choices in Randomized Load Balancing", 2001), and
 * because it is randomised, many balancers sharing the same backends do not herd onto the same one.
 *
 * This base class draws and compares; subclasses say what cost means (tower's split between "how
 * loaded is this endpoint" and "which endpoint do I pick").
 *
 * Complexity: `pick()` O(d) with d + 1 random numbers at most; with `exclude`, a few redraws and then
 * an O(n) scan. `update()` O(n).
 */
import { type RandomSource, systemRandom } from '../core/clock.js';
import type { Endpoint } from '../core/endpoint.js';
import { checkKnownOptions, optionalFunction, optionalNumber } from '../core/validate.js';
import type { Balancer, PickContext } from './Balancer.js';
import { negativeBit, otherIndex, takeActive } from './membership.js';
import { WeightedSampler } from './WeightedSampler.js';

/** Options of the power-of-choices balancers (`least-request`, `peak-ewma`). */
export interface PowerOfChoicesOptions {
  /** Source of uniform numbers in [0, 1). @default systemRandom */
  random?: RandomSource;
  /** How many endpoints each pick compares, an integer >= 2. @default 2 */
  choices?: number;
}

const REDRAWS = 4;

/** Draws `choices` endpoints and keeps the cheapest. */
export abstract class PowerOfChoicesBalancer<E extends Endpoint = Endpoint> implements Balancer<E> {
  abstract readonly name: string;
  readonly #random: RandomSource;
  readonly #choices: number;
  #endpoints: E[] = [];
  #sampler = new WeightedSampler([]);

  constructor(options: PowerOfChoicesOptions, owner: string) {
    checkKnownOptions(options, ['random', 'choices'], owner);
    this.#random = optionalFunction(options.random, 'random', systemRandom);
    this.#choices = optionalNumber(options.choices, 'choices', 2, { min: 2, integer: true });
  }

  /** The cost of sending one more request to `endpoint`; lower is better. Must not allocate. */
  protected abstract cost(endpoint: E): number;

  update(endpoints: readonly E[]): void {
    const list = takeActive(endpoints, this.name);
    this.#endpoints = list;
    this.#sampler = WeightedSampler.ofEndpoints(list);
  }

  pick(ctx?: PickContext): E | undefined {
    const list = this.#endpoints;
    const n = list.length;
    if (n <= 1) {
      const only = list[0];
      return only === undefined || ctx?.exclude?.has(only.id) ? undefined : only;
    }
    const exclude = ctx?.exclude !== undefined && ctx.exclude.size > 0 ? ctx.exclude : undefined;
    if (exclude === undefined && this.#choices === 2) {
      // The common case, unrolled: two draws, one comparison.
      const random = this.#random;
      const sampler = this.#sampler;
      const first = sampler.sample(random());
      // Equal weights: make the second draw differ from the first.
      const second = sampler.uniform ? otherIndex(random, n, first) : sampler.sample(random());
      const costA = this.cost(list[first] as E);
      const costB = this.cost(list[second] as E);
      // Costs closer than 2^-30 count as a tie (see negativeBit).
      const takeSecond = negativeBit(costB - costA);
      return list[first + (second - first) * takeSecond];
    }
    for (let attempt = 0; attempt < REDRAWS; attempt++) {
      const chosen = this.#drawBest(list, n, exclude);
      if (chosen !== undefined) return chosen;
    }
    return this.#cheapestExcluding(list, exclude);
  }

  #drawBest(list: readonly E[], n: number, exclude: ReadonlySet<string> | undefined): E | undefined {
    const sampler = this.#sampler;
    const random = this.#random;
    let best: E | undefined;
    let bestCost = 0;
    let first = -1;
    for (let c = 0; c < this.#choices; c++) {
      const index = c === 1 && sampler.uniform ? otherIndex(random, n, first) : sampler.sample(random());
      if (c === 0) first = index;
      const candidate = list[index] as E;
      if (exclude?.has(candidate.id)) continue;
      const cost = this.cost(candidate);
      if (best === undefined || cost < bestCost) {
        best = candidate;
        bestCost = cost;
      }
    }
    return best;
  }

  #cheapestExcluding(list: readonly E[], exclude: ReadonlySet<string> | undefined): E | undefined {
    let best: E | undefined;
    let bestCost = 0;
    for (const candidate of list) {
      if (exclude?.has(candidate.id)) continue;
      const cost = this.cost(candidate);
      if (best === undefined || cost < bestCost) {
        best = candidate;
        bestCost = cost;
      }
    }
    return best;
  }
}
