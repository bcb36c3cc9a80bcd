/**
 * Priority tiers with failover: endpoints of priority 0 are primaries, 1 the first backups, and so
 * on. A tier takes `min(1, health × overprovisioningFactor)` of what the tiers before it left over,
 * where health is its eligible endpoints over all its endpoints (Envoy's priority load). With the
 * default factor 1.4, backups take nothing while primaries are at least ~72 % healthy, 30 % when half
 * the primaries are gone, and everything when none is left. When the tiers together cannot take all
 * traffic, their shares are scaled up to sum to 1. `overprovisioningFactor: Infinity` gives nginx's
 * `backup`: backups only when no primary is eligible.
 *
 * `update(eligible, all)` takes the full membership as a second argument; called with one argument,
 * every endpoint counts as healthy and backups take nothing while any primary is eligible.
 *
 * Complexity: `pick()` one random number (none with a single tier) plus one inner pick, O(tiers).
 * Source: Envoy "priority levels" and "overprovisioning factor"; nginx `server ... backup`.
 */
import { type RandomSource, systemRandom } from '../core/clock.js';
import type { Endpoint } from '../core/endpoint.js';
import { checkKnownOptions, optionalFunction, optionalNumber } from '../core/validate.js';
import type { Balancer, PickContext } from './Balancer.js';
import type { BalancerOptions } from './createBalancer.js';
import { takeActive } from './membership.js';
import { groupCapacity, type InnerBalancer, innerFactory } from './tiers.js';

/** Options of {@link PriorityBalancer}. */
export interface PriorityOptions<E extends Endpoint = Endpoint> {
  /** Algorithm inside each tier. @default 'round-robin' */
  inner?: InnerBalancer<E>;
  /** Options for a named `inner`. */
  innerOptions?: BalancerOptions;
  /** Health multiplier, >= 1; `Infinity` for nginx-style backups. @default 1.4 */
  overprovisioningFactor?: number;
  /** Chooses the tier. @default systemRandom */
  random?: RandomSource;
}

interface Tier<E extends Endpoint> {
  readonly priority: number;
  readonly balancer: Balancer<E>;
  /** Upper end of this tier's slice of [0, 1). */
  until: number;
}

/** Primaries first, backups as the primaries lose health. */
export class PriorityBalancer<E extends Endpoint = Endpoint> implements Balancer<E> {
  readonly name: string = 'priority';
  readonly #factor: number;
  readonly #random: RandomSource;
  readonly #make: () => Balancer<E>;
  #tiers: Tier<E>[] = [];

  constructor(options: PriorityOptions<E> = {}) {
    checkKnownOptions(
      options,
      ['inner', 'innerOptions', 'overprovisioningFactor', 'random'],
      'priority balancer',
    );
    this.#factor = optionalNumber(options.overprovisioningFactor, 'overprovisioningFactor', 1.4, {
      min: 1,
      max: Number.POSITIVE_INFINITY,
    });
    this.#random = optionalFunction(options.random, 'random', systemRandom);
    this.#make = innerFactory(options.inner, options.innerOptions ?? {}, 'inner');
  }

  /** Each tier's share of picks now, by priority. */
  get shares(): ReadonlyMap<number, number> {
    const shares = new Map<number, number>();
    let previous = 0;
    for (const tier of this.#tiers) {
      shares.set(tier.priority, tier.until - previous);
      previous = tier.until;
    }
    return shares;
  }

  update(endpoints: readonly E[], all: readonly E[] = endpoints): void {
    const eligible = new Map<number, E[]>();
    const members = new Map<number, E[]>();
    for (const endpoint of all) {
      const priority = endpoint.priority ?? 0;
      const group = members.get(priority);
      if (group === undefined) members.set(priority, [endpoint]);
      else group.push(endpoint);
    }
    for (const endpoint of takeActive(endpoints, this.name)) {
      const priority = endpoint.priority ?? 0;
      if (!Number.isInteger(priority) || priority < 0) {
        throw new RangeError(`priority.update(): endpoint "${endpoint.id}" priority must be an integer >= 0`);
      }
      let group = eligible.get(priority);
      if (group === undefined) {
        group = [];
        eligible.set(priority, group);
      }
      group.push(endpoint);
    }
    // An eligible endpoint missing from `all` (a caller that passed less) still counts as a member.
    for (const [priority, group] of eligible) {
      const tier = members.get(priority);
      if (tier === undefined) members.set(priority, group);
      else for (const endpoint of group) if (!tier.includes(endpoint)) tier.push(endpoint);
    }
    const previous = new Map(this.#tiers.map((tier) => [tier.priority, tier.balancer]));
    const priorities = [...members.keys()].sort((a, b) => a - b);
    const tiers: Tier<E>[] = [];
    const loads: number[] = [];
    let left = 1;
    for (const priority of priorities) {
      const group = eligible.get(priority) ?? [];
      const tierMembers = members.get(priority) ?? group;
      const balancer = previous.get(priority) ?? this.#make();
      balancer.update(group, tierMembers);
      const load = Math.min(left, groupCapacity(group.length, tierMembers.length, this.#factor));
      left -= load;
      tiers.push({ priority, balancer, until: 0 });
      loads.push(load);
    }
    const taken = 1 - left;
    let cumulative = 0;
    for (let i = 0; i < tiers.length; i++) {
      cumulative += taken > 0 ? (loads[i] as number) / taken : 0;
      (tiers[i] as Tier<E>).until = cumulative;
    }
    this.#tiers = tiers;
  }

  pick(ctx?: PickContext): E | undefined {
    const tiers = this.#tiers;
    if (tiers.length === 0) return undefined;
    if (tiers.length === 1) return (tiers[0] as Tier<E>).balancer.pick(ctx);
    const draw = this.#random();
    let chosen = tiers.length - 1;
    for (let i = 0; i < tiers.length; i++) {
      if (draw < (tiers[i] as Tier<E>).until) {
        chosen = i;
        break;
      }
    }
    const picked = (tiers[chosen] as Tier<E>).balancer.pick(ctx);
    if (picked !== undefined) return picked;
    // The drawn tier has nothing left that is not excluded: fail over in priority order.
    for (let i = 0; i < tiers.length; i++) {
      if (i === chosen) continue;
      const fallback = (tiers[i] as Tier<E>).balancer.pick(ctx);
      if (fallback !== undefined) return fallback;
    }
    return undefined;
  }
}
