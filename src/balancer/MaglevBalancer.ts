/**
 * Maglev hashing (Eisenbud et al., "Maglev: A Fast and Reliable Software Network Load Balancer",
 * NSDI 2016). Each endpoint has a permutation of the M slots of a lookup table (M prime) given by an
 * offset and a skip, both hashed from its id; endpoints take turns claiming their next free preferred
 * slot until the table is full. A key goes to `table[hash(key) mod M]`.
 *
 * Weights follow Envoy's weighted Maglev: in round r an endpoint of normalised weight w claims a slot
 * only while it has claimed fewer than r × w, so slots are shared in proportion to weight.
 *
 * Guarantee: each endpoint owns within a slot or so of M × weight share of the table, and a change of
 * one of n endpoints moves little more than 1/n of keys (the paper's "minimal disruption").
 * Complexity: `pick()` O(1) plus O(key length) to hash; `update()` O(M log M) expected.
 */
import { type RandomSource, systemRandom } from '../core/clock.js';
import type { Endpoint } from '../core/endpoint.js';
import { hashKey, murmur3String } from '../core/hash.js';
import { checkKnownOptions, optionalFunction, optionalNumber } from '../core/validate.js';
import type { Balancer, PickContext } from './Balancer.js';
import { takeActive } from './membership.js';

/** Options of {@link MaglevBalancer}. */
export interface MaglevOptions {
  /** Lookup table size, a prime larger than the number of endpoints (ideally 100×). @default 65537 */
  tableSize?: number;
  /** Picks a random slot for a pick without a key. @default systemRandom */
  random?: RandomSource;
}

const OFFSET_SEED = 0x9e3779b9;
const SKIP_SEED = 0x7f4a7c15;

function isPrime(n: number): boolean {
  if (n < 2) return false;
  if (n % 2 === 0) return n === 2;
  for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return false;
  return true;
}

/** Maglev consistent hashing with an O(1) lookup table. */
export class MaglevBalancer<E extends Endpoint = Endpoint> implements Balancer<E> {
  readonly name: string = 'maglev';
  readonly #tableSize: number;
  readonly #random: RandomSource;
  #endpoints: E[] = [];
  #table = new Int32Array(0);

  constructor(options: MaglevOptions = {}) {
    checkKnownOptions(options, ['tableSize', 'random'], 'maglev balancer');
    this.#tableSize = optionalNumber(options.tableSize, 'tableSize', 65537, {
      min: 3,
      max: 2 ** 24,
      integer: true,
    });
    if (!isPrime(this.#tableSize))
      throw new RangeError(`tableSize must be a prime number, got ${this.#tableSize}`);
    this.#random = optionalFunction(options.random, 'random', systemRandom);
  }

  update(endpoints: readonly E[]): void {
    const list = takeActive(endpoints, this.name);
    const size = this.#tableSize;
    const n = list.length;
    if (n > size) {
      throw new RangeError(
        `maglev: ${n} endpoints need a tableSize larger than ${size} (a prime, ideally 100× more)`,
      );
    }
    const table = new Int32Array(n === 0 ? 0 : size).fill(-1);
    if (n > 0) {
      const next = new Float64Array(n);
      const skip = new Float64Array(n);
      const share = new Float64Array(n);
      const claimed = new Float64Array(n);
      let maxWeight = 0;
      for (const endpoint of list) maxWeight = Math.max(maxWeight, endpoint.weight);
      for (let i = 0; i < n; i++) {
        const endpoint = list[i] as E;
        next[i] = murmur3String(endpoint.id, OFFSET_SEED) % size;
        skip[i] = (murmur3String(endpoint.id, SKIP_SEED) % (size - 1)) + 1;
        share[i] = endpoint.weight / maxWeight;
      }
      let filled = 0;
      for (let round = 1; filled < size; round++) {
        for (let i = 0; i < n && filled < size; i++) {
          if (round * (share[i] as number) < (claimed[i] as number)) continue;
          claimed[i] = (claimed[i] as number) + 1;
          let slot = next[i] as number;
          while ((table[slot] as number) >= 0) slot = (slot + (skip[i] as number)) % size;
          table[slot] = i;
          next[i] = (slot + (skip[i] as number)) % size;
          filled++;
        }
      }
    }
    this.#endpoints = list;
    this.#table = table;
  }

  pick(ctx?: PickContext): E | undefined {
    const table = this.#table;
    const size = table.length;
    if (size === 0) return undefined;
    const key = ctx?.key;
    const slot = key === undefined ? Math.floor(this.#random() * size) % size : hashKey(key) % size;
    const list = this.#endpoints;
    const exclude = ctx?.exclude;
    if (exclude === undefined || exclude.size === 0) return list[table[slot] as number];
    for (let step = 0, i = slot; step < size; step++, i = i + 1 === size ? 0 : i + 1) {
      const candidate = list[table[i] as number] as E;
      if (!exclude.has(candidate.id)) return candidate;
    }
    return undefined;
  }
}
