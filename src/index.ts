// Public API of mcgravity. This file only re-exports; see DESIGN.md for the layers.

export type { Balancer, BalancerName, PickContext } from './balancer/Balancer.js';
export { ConsistentHashBalancer, type ConsistentHashOptions } from './balancer/ConsistentHashBalancer.js';
export { type BalancerOptions, balancerNames, createBalancer } from './balancer/createBalancer.js';
export { IpHashBalancer, type IpHashOptions } from './balancer/IpHashBalancer.js';
export { LeastConnectionsBalancer } from './balancer/LeastConnectionsBalancer.js';
export { LeastRequestBalancer, type LeastRequestOptions } from './balancer/LeastRequestBalancer.js';
export { MaglevBalancer, type MaglevOptions } from './balancer/MaglevBalancer.js';
export { PeakEwmaBalancer, type PeakEwmaOptions } from './balancer/PeakEwmaBalancer.js';
export { PowerOfChoicesBalancer, type PowerOfChoicesOptions } from './balancer/PowerOfChoicesBalancer.js';
export { PriorityBalancer, type PriorityOptions } from './balancer/PriorityBalancer.js';
export { RandomBalancer, type RandomBalancerOptions } from './balancer/RandomBalancer.js';
export { RoundRobinBalancer } from './balancer/RoundRobinBalancer.js';
export type { InnerBalancer } from './balancer/tiers.js';
export { WeightedRoundRobinBalancer } from './balancer/WeightedRoundRobinBalancer.js';
export { ZoneAwareBalancer, type ZoneAwareOptions } from './balancer/ZoneAwareBalancer.js';
export { type Clock, type RandomSource, systemClock, systemRandom } from './core/clock.js';
export { type Duration, parseDuration } from './core/duration.js';
export {
  type BackendConfig,
  type Endpoint,
  type NormalizedBackend,
  normalizeBackend,
} from './core/endpoint.js';
export {
  type ErrorCode,
  errorStatus,
  isMcgravityError,
  McgravityError,
  type McgravityErrorOptions,
} from './core/errors.js';
export { hashKey, murmur3Bytes, murmur3String } from './core/hash.js';
export { PeakEwma, type PeakEwmaEstimateOptions } from './core/PeakEwma.js';
