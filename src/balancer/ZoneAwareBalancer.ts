/**
 * Zone-aware (locality) routing: keep traffic in the caller's own zone while that zone is healthy
 * enough, and spill the rest over to other zones in proportion to what the local zone has lost.
 *
 * The local zone's health h is its eligible endpoints over all its endpoints. It takes
 * `min(1, h × overprovisioningFactor)` of the picks; the remainder goes to the other zones, balanced
 * by their own inner balancer. With the default factor 1.4 (Envoy's), a local zone that has lost up
 * to ~28 % of its endpoints keeps all of its traffic; at 50 % health it keeps 70 % and spills 30 %.
 * When either side has nothing to pick, the other takes the pick.
 *
 * `update(eligible, all)` takes the full membership as a second argument so that health can be
 * measured; called with one argument, every endpoint counts as healthy.
 *
 * Complexity: one random number and one inner pick per pick. Source: Envoy's zone-aware routing and
 * locality weighted load balancing, simplified to "local first, spill in proportion".
 */
import { type RandomSource, systemRandom } from '../core/clock.js';
import type { Endpoint } from '../core/endpoint.js';
import { checkKnownOptions, optionalFunction, optionalNumber } from '../core/validate.js';
import type { Balancer, PickContext } from './Balancer.js';
import type { BalancerOptions } from './createBalancer.js';
import { takeActive } from './membership.js';
import { groupCapacity, type InnerBalancer, innerFactory } from './tiers.js';

/** Options of {@link ZoneAwareBalancer}. */
export interface ZoneAwareOptions<E extends Endpoint = Endpoint> {
  /** The caller's zone; endpoints whose `zone` equals it are local. */
  localZone: string;
  /** Algorithm inside each side (local, remote). @default 'round-robin' */
  inner?: InnerBalancer<E>;
  /** Options for a named `inner`. */
  innerOptions?: BalancerOptions;
  /** Health multiplier before spilling, >= 1; `Infinity` spills only when no local endpoint is eligible. @default 1.4 */
  overprovisioningFactor?: number;
  /** Chooses between local and remote. @default systemRandom */
  random?: RandomSource;
}

/** Prefers the local zone, spilling over in proportion to its lost capacity. */
export class ZoneAwareBalancer<E extends Endpoint = Endpoint> implements Balancer<E> {
  readonly name: string = 'zone-aware';
  readonly #localZone: string;
  readonly #factor: number;
  readonly #random: RandomSource;
  readonly #local: Balancer<E>;
  readonly #remote: Balancer<E>;
  #localShare = 0;

  constructor(options: ZoneAwareOptions<E>) {
    checkKnownOptions(
      options ?? {},
      ['localZone', 'inner', 'innerOptions', 'overprovisioningFactor', 'random'],
      'zone-aware balancer',
    );
    if (typeof options?.localZone !== 'string' || options.localZone === '') {
      throw new TypeError('localZone must be a non-empty string');
    }
    this.#localZone = options.localZone;
    this.#factor = optionalNumber(options.overprovisioningFactor, 'overprovisioningFactor', 1.4, {
      min: 1,
      max: Number.POSITIVE_INFINITY,
    });
    this.#random = optionalFunction(options.random, 'random', systemRandom);
    const make = innerFactory(options.inner, options.innerOptions ?? {}, 'inner');
    this.#local = make();
    this.#remote = make();
  }

  /** The share of picks the local zone takes now, in [0, 1]. */
  get localShare(): number {
    return this.#localShare;
  }

  update(endpoints: readonly E[], all: readonly E[] = endpoints): void {
    const local: E[] = [];
    const remote: E[] = [];
    for (const endpoint of takeActive(endpoints, this.name))
      (endpoint.zone === this.#localZone ? local : remote).push(endpoint);
    const localMembers: E[] = [];
    const remoteMembers: E[] = [];
    for (const endpoint of all)
      (endpoint.zone === this.#localZone ? localMembers : remoteMembers).push(endpoint);
    this.#local.update(local, localMembers.length >= local.length ? localMembers : local);
    this.#remote.update(remote, remoteMembers.length >= remote.length ? remoteMembers : remote);
    this.#localShare = groupCapacity(local.length, Math.max(localMembers.length, local.length), this.#factor);
  }

  pick(ctx?: PickContext): E | undefined {
    const share = this.#localShare;
    const localFirst = share >= 1 || (share > 0 && this.#random() < share);
    return localFirst
      ? (this.#local.pick(ctx) ?? this.#remote.pick(ctx))
      : (this.#remote.pick(ctx) ?? this.#local.pick(ctx));
  }
}
