/**
 * `createBalancer(name, options)`: a built-in algorithm by name, as config files and `Cluster` name
 * them. Options that do not apply to the named algorithm are refused, naming the option.
 */
import type { RandomSource } from '../core/clock.js';
import type { Endpoint } from '../core/endpoint.js';
import { checkKnownOptions } from '../core/validate.js';
import type { Balancer, BalancerName } from './Balancer.js';
import { ConsistentHashBalancer } from './ConsistentHashBalancer.js';
import { IpHashBalancer } from './IpHashBalancer.js';
import { LeastConnectionsBalancer } from './LeastConnectionsBalancer.js';
import { LeastRequestBalancer } from './LeastRequestBalancer.js';
import { MaglevBalancer } from './MaglevBalancer.js';
import { PeakEwmaBalancer } from './PeakEwmaBalancer.js';
import { RandomBalancer } from './RandomBalancer.js';
import { RoundRobinBalancer } from './RoundRobinBalancer.js';
import { WeightedRoundRobinBalancer } from './WeightedRoundRobinBalancer.js';

/** Options of the built-in balancers; each applies only to the algorithms named in its comment. */
export interface BalancerOptions {
  /** Random source in [0, 1): `random`, `least-request`, `peak-ewma`, and the hash ones for keyless picks. */
  random?: RandomSource;
  /** Endpoints compared per pick: `least-request`, `peak-ewma`. @default 2 */
  choices?: number;
  /** Ring points per endpoint of average weight: `consistent-hash`, `ip-hash`. @default 160 */
  virtualNodes?: number;
  /** Most ring points: `consistent-hash`, `ip-hash`. @default 4_194_304 */
  maxRingSize?: number;
  /** Load bound c > 1: `consistent-hash`, `ip-hash`. Off by default. */
  boundedLoad?: number;
  /** Lookup table size, prime: `maglev`. @default 65537 */
  tableSize?: number;
}

const FACTORIES: Readonly<Record<BalancerName, (options: BalancerOptions) => Balancer<Endpoint>>> = {
  'round-robin': (options) => {
    checkKnownOptions(options, [], 'round-robin balancer');
    return new RoundRobinBalancer();
  },
  'weighted-round-robin': (options) => {
    checkKnownOptions(options, [], 'weighted-round-robin balancer');
    return new WeightedRoundRobinBalancer();
  },
  random: (options) => new RandomBalancer(options),
  'least-connections': (options) => {
    checkKnownOptions(options, [], 'least-connections balancer');
    return new LeastConnectionsBalancer();
  },
  'least-request': (options) => new LeastRequestBalancer(options),
  'peak-ewma': (options) => new PeakEwmaBalancer(options),
  'consistent-hash': (options) => new ConsistentHashBalancer(options),
  maglev: (options) => new MaglevBalancer(options),
  'ip-hash': (options) => new IpHashBalancer(options),
};

/** Every built-in algorithm name, in documentation order. */
export const balancerNames = Object.keys(FACTORIES) as readonly BalancerName[];

/**
 * Creates a built-in balancer by name.
 * @throws TypeError for an unknown name or an option the algorithm does not take
 */
export function createBalancer<E extends Endpoint = Endpoint>(
  name: BalancerName,
  options: BalancerOptions = {},
): Balancer<E> {
  const factory = Object.hasOwn(FACTORIES, name) ? FACTORIES[name] : undefined;
  if (factory === undefined) {
    throw new TypeError(`balancer must be one of ${balancerNames.join(', ')}, got ${JSON.stringify(name)}`);
  }
  // Each algorithm is generic in E; the table stores them at the Endpoint bound.
  return factory(options) as unknown as Balancer<E>;
}
