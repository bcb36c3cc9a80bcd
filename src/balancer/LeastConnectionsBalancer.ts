/**
 * Least connections: the endpoint with the fewest requests in flight relative to its weight, i.e. the
 * least `(inflight + 1) / weight` (HAProxy's leastconn key, so weights count even at zero load).
 *
 * Complexity: `pick()` O(n): in-flight counts change on every request and are owned by the caller,
 * so there is no index to keep; this is what nginx's least_conn does too. The scan stops early at an
 * idle endpoint of the highest weight, which no other can beat, so a lightly loaded set is cheap.
 * For large busy sets prefer `least-request` (P2C), O(1) and nearly as good. `update()` O(n).
 * Guarantee: every pick returns an endpoint of minimal load; ties go to the first one met from a
 * start position that rotates on every pick, so equal endpoints share the traffic rather than the
 * first one taking it all.
 */
import type { Endpoint } from '../core/endpoint.js';
import type { Balancer, PickContext } from './Balancer.js';
import { leastLoaded, takeActive } from './membership.js';

/** Fewest in-flight requests relative to weight. */
export class LeastConnectionsBalancer<E extends Endpoint = Endpoint> implements Balancer<E> {
  readonly name: string = 'least-connections';
  #endpoints: E[] = [];
  #start = 0;
  #maxWeight = 0;

  update(endpoints: readonly E[]): void {
    this.#endpoints = takeActive(endpoints, this.name);
    this.#maxWeight = 0;
    for (const endpoint of this.#endpoints) this.#maxWeight = Math.max(this.#maxWeight, endpoint.weight);
    if (this.#start >= this.#endpoints.length) this.#start = 0;
  }

  pick(ctx?: PickContext): E | undefined {
    const n = this.#endpoints.length;
    if (n === 0) return undefined;
    const start = this.#start;
    this.#start = start + 1 === n ? 0 : start + 1;
    return leastLoaded(this.#endpoints, start, ctx?.exclude, this.#maxWeight);
  }
}
