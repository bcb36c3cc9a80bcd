/**
 * The Balancer contract. A balancer answers one question: which endpoint takes the next request?
 * It does not measure load (endpoints carry `inflight` and `latencyEwma`, kept by their owner) and it
 * does not decide eligibility (the owner passes only eligible endpoints to `update()`).
 */
import type { Endpoint } from '../core/endpoint.js';

/** Per-pick input. Reused objects are fine: a balancer never keeps a reference to it. */
export interface PickContext {
  /** Hash key for the hash balancers (session id, user id, client address). */
  key?: string | Uint8Array;
  /** Ids of endpoints already tried for this request: never returned. */
  exclude?: ReadonlySet<string>;
}

/**
 * A load-balancing algorithm. Implement it to plug in your own.
 *
 * `update()` is called when the eligible set changes and may do O(n log n) work; `pick()` is the
 * hot path: synchronous, no allocation, O(1) or O(log n) for the built-in algorithms unless stated.
 */
export interface Balancer<E extends Endpoint = Endpoint> {
  /** The algorithm's name, e.g. `round-robin`. */
  readonly name: string;
  /**
   * Replaces the set of eligible endpoints (membership, health, weight or drain changed).
   * `membership` is every endpoint that belongs, eligible or not (draining ones aside): wrappers that
   * measure health (zone-aware, priority tiers) read it, and pass each inner balancer its own share
   * of both; others ignore it. Omitted, it is taken to be `endpoints` (everything healthy).
   * @throws TypeError on duplicate ids, RangeError on a weight that is not a finite number >= 0
   */
  update(endpoints: readonly E[], membership?: readonly E[]): void;
  /** Picks an endpoint; `undefined` only when no eligible, non-excluded endpoint with weight > 0 is left. */
  pick(ctx?: PickContext): E | undefined;
}

/** Names of the built-in algorithms, for {@link createBalancer} and config files. */
export type BalancerName =
  | 'round-robin'
  | 'weighted-round-robin'
  | 'random'
  | 'least-connections'
  | 'least-request'
  | 'peak-ewma'
  | 'consistent-hash'
  | 'maglev'
  | 'ip-hash';
