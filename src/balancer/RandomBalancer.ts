/**
 * Weighted random: each pick takes endpoint i with probability weight_i / sum(weights).
 *
 * Complexity: `pick()` O(1) with one random number (see WeightedSampler.ts);
 * with `exclude`, a few redraws and then an O(n) weighted draw over the rest. `update()` O(n).
 * Guarantee: picks are independent and proportional to weight (no state, so many proxies using it
 * never synchronise). Source: Envoy's RANDOM policy; Mitzenmacher's analysis for why P2C beats it.
 */
import { type RandomSource, systemRandom } from '../core/clock.js';
import type { Endpoint } from '../core/endpoint.js';
import { checkKnownOptions, optionalFunction } from '../core/validate.js';
import type { Balancer, PickContext } from './Balancer.js';
import { takeActive } from './membership.js';
import { WeightedSampler } from './WeightedSampler.js';

/** Options of {@link RandomBalancer}. */
export interface RandomBalancerOptions {
  /** Source of uniform numbers in [0, 1). @default systemRandom */
  random?: RandomSource;
}

const REDRAWS = 4;

/**
 * Draws one endpoint proportionally to weight from those not in `exclude`: O(n), for retries.
 * Shared by the randomised balancers.
 */
export function weightedDrawExcluding<E extends Endpoint>(
  list: readonly E[],
  exclude: ReadonlySet<string>,
  random: RandomSource,
): E | undefined {
  let total = 0;
  for (const endpoint of list) if (!exclude.has(endpoint.id)) total += endpoint.weight;
  if (total === 0) return undefined;
  let target = random() * total;
  let last: E | undefined;
  for (const endpoint of list) {
    if (exclude.has(endpoint.id)) continue;
    last = endpoint;
    target -= endpoint.weight;
    if (target < 0) return endpoint;
  }
  return last;
}

/** Weighted random choice. */
export class RandomBalancer<E extends Endpoint = Endpoint> implements Balancer<E> {
  readonly name: string = 'random';
  readonly #random: RandomSource;
  #endpoints: E[] = [];
  #sampler = new WeightedSampler([]);

  constructor(options: RandomBalancerOptions = {}) {
    checkKnownOptions(options, ['random'], 'random balancer');
    this.#random = optionalFunction(options.random, 'random', systemRandom);
  }

  update(endpoints: readonly E[]): void {
    const list = takeActive(endpoints, this.name);
    this.#endpoints = list;
    this.#sampler = WeightedSampler.ofEndpoints(list);
  }

  pick(ctx?: PickContext): E | undefined {
    const list = this.#endpoints;
    const n = list.length;
    if (n === 0) return undefined;
    const exclude = ctx?.exclude;
    if (exclude === undefined || exclude.size === 0) return list[this.#sampler.sample(this.#random())];
    for (let attempt = 0; attempt < REDRAWS; attempt++) {
      const candidate = list[this.#sampler.sample(this.#random())] as E;
      if (!exclude.has(candidate.id)) return candidate;
    }
    return weightedDrawExcluding(list, exclude, this.#random);
  }
}
