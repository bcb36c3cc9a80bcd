/**
 * Consistent hashing on a ring with virtual nodes (Karger et al., 1997; ketama), hashed with
 * MurmurHash3. Each endpoint owns `virtualNodes × weight / mean weight` points on a 32-bit ring; a key
 * goes to the owner of the first point at or after the key's hash. Adding or removing one of n
 * endpoints moves only the keys of its own points, about 1/n of all keys.
 *
 * With `boundedLoad: c` it becomes consistent hashing with bounded loads (Mirrokni, Thorup and
 * Zadimoghaddam, "Consistent Hashing with Bounded Loads", SODA 2018): an endpoint whose in-flight
 * count has reached `ceil(c × (total in flight + 1) × weight / total weight)` is passed over for the
 * next one clockwise, so no endpoint carries more than c times its share, and keys move only as far
 * as needed.
 *
 * Complexity: `pick()` O(log(ring size)) for the binary search plus O(key length) to hash; with
 * `boundedLoad`, O(n) more to sum the loads. `update()` O(R log R) for R ring points.
 */
import { type RandomSource, systemRandom } from '../core/clock.js';
import type { Endpoint } from '../core/endpoint.js';
import { hashKey, murmur3String } from '../core/hash.js';
import { checkKnownOptions, optionalFunction, optionalNumber } from '../core/validate.js';
import type { Balancer, PickContext } from './Balancer.js';
import { takeActive } from './membership.js';

/** Options of {@link ConsistentHashBalancer}. */
export interface ConsistentHashOptions {
  /** Ring points of an endpoint of average weight. More points, smoother spread. @default 160 */
  virtualNodes?: number;
  /** Most ring points in all; weights are scaled down to fit. @default 4_194_304 */
  maxRingSize?: number;
  /**
   * Bound c > 1 of consistent hashing with bounded loads: no endpoint takes more than `c` times its
   * weighted share of the requests in flight. Off by default.
   */
  boundedLoad?: number;
  /** Picks a random point for a pick without a key. @default systemRandom */
  random?: RandomSource;
}

const TWO_POW_21 = 2 ** 21;
const TWO_POW_32 = 2 ** 32;

/** Ring hash with virtual nodes, optionally with bounded loads. */
export class ConsistentHashBalancer<E extends Endpoint = Endpoint> implements Balancer<E> {
  readonly name: string = 'consistent-hash';
  readonly #virtualNodes: number;
  readonly #maxRingSize: number;
  readonly #boundedLoad: number;
  readonly #random: RandomSource;
  #endpoints: E[] = [];
  #totalWeight = 0;
  #points = new Uint32Array(0);
  #owners = new Uint32Array(0);

  constructor(options: ConsistentHashOptions = {}, owner = 'consistent-hash balancer') {
    checkKnownOptions(options, ['virtualNodes', 'maxRingSize', 'boundedLoad', 'random'], owner);
    this.#virtualNodes = optionalNumber(options.virtualNodes, 'virtualNodes', 160, { min: 1, integer: true });
    this.#maxRingSize = optionalNumber(options.maxRingSize, 'maxRingSize', 4_194_304, {
      min: 1,
      max: 2 ** 26,
      integer: true,
    });
    this.#boundedLoad = optionalNumber(options.boundedLoad, 'boundedLoad', 0, { above: 1 });
    this.#random = optionalFunction(options.random, 'random', systemRandom);
  }

  update(endpoints: readonly E[]): void {
    const list = takeActive(endpoints, this.name);
    if (list.length >= TWO_POW_21) throw new RangeError(`${this.name}: at most ${TWO_POW_21 - 1} endpoints`);
    let total = 0;
    for (const endpoint of list) total += endpoint.weight;
    const mean = list.length === 0 ? 1 : total / list.length;
    let scale = this.#virtualNodes / mean;
    if (total * scale > this.#maxRingSize) scale = this.#maxRingSize / total;
    const counts = list.map((endpoint) => Math.max(1, Math.round(endpoint.weight * scale)));
    let size = 0;
    for (const count of counts) size += count;
    // Pack (hash, owner) into one float, hash × 2^21 + owner < 2^53, so a typed-array sort orders
    // the ring by hash and breaks ties by owner, with no comparator.
    const packed = new Float64Array(size);
    let at = 0;
    for (let owner = 0; owner < list.length; owner++) {
      const id = (list[owner] as E).id;
      const count = counts[owner] as number;
      for (let replica = 0; replica < count; replica++) {
        packed[at++] = murmur3String(`${id}-${replica}`) * TWO_POW_21 + owner;
      }
    }
    packed.sort();
    const points = new Uint32Array(size);
    const owners = new Uint32Array(size);
    for (let i = 0; i < size; i++) {
      const value = packed[i] as number;
      const owner = value % TWO_POW_21;
      points[i] = (value - owner) / TWO_POW_21;
      owners[i] = owner;
    }
    this.#endpoints = list;
    this.#totalWeight = total;
    this.#points = points;
    this.#owners = owners;
  }

  pick(ctx?: PickContext): E | undefined {
    const size = this.#points.length;
    if (size === 0) return undefined;
    const key = ctx?.key;
    const hash = key === undefined ? Math.floor(this.#random() * TWO_POW_32) | 0 : this.hash(key);
    return this.#pickByHash(hash >>> 0, ctx?.exclude);
  }

  /**
   * Hashes a pick key; a subclass may normalise the key first. Returns the 32 bits as a signed
   * integer (`| 0`), which V8 passes without allocating, where an unsigned one above 2^31 would be
   * boxed on every call.
   */
  protected hash(key: string | Uint8Array): number {
    return hashKey(key) | 0;
  }

  // The owner of the first ring point at or after `hash`, honouring `exclude` and the load bound.
  #pickByHash(hash: number, exclude: ReadonlySet<string> | undefined): E | undefined {
    const points = this.#points;
    const size = points.length;
    let low = 0;
    let high = size;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if ((points[mid] as number) < hash) low = mid + 1;
      else high = mid;
    }
    const start = low === size ? 0 : low;
    const list = this.#endpoints;
    const excluding = exclude !== undefined && exclude.size > 0;
    if (this.#boundedLoad === 0 && !excluding) return list[this.#owners[start] as number];
    const unit =
      this.#boundedLoad === 0 ? 0 : (this.#boundedLoad * (this.#totalInflight() + 1)) / this.#totalWeight;
    let fallback: E | undefined;
    for (let step = 0, i = start; step < size; step++, i = i + 1 === size ? 0 : i + 1) {
      const candidate = list[this.#owners[i] as number] as E;
      if (excluding && exclude.has(candidate.id)) continue;
      if (unit === 0 || candidate.inflight < Math.ceil(unit * candidate.weight)) return candidate;
      fallback ??= candidate;
    }
    return fallback;
  }

  #totalInflight(): number {
    let total = 0;
    for (const endpoint of this.#endpoints) total += endpoint.inflight;
    return total;
  }
}
