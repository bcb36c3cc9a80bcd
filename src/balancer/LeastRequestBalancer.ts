/**
 * Least request: power of two choices on `(inflight + 1) / weight` (Envoy's LEAST_REQUEST family,
 * the default of this library). Candidates are drawn proportionally to weight, and the load is
 * normalised by weight, so a heavier endpoint is both drawn more often and allowed more in flight.
 *
 * Complexity: `pick()` O(1) (d = 2 draws); see PowerOfChoicesBalancer.ts.
 * Guarantee: never picks a candidate when a drawn alternative has a strictly lower load; picks follow
 * the weights within statistical tolerance when all loads are equal.
 * Source: Mitzenmacher 2001; Envoy's least_request load balancer.
 */
import type { Endpoint } from '../core/endpoint.js';
import { PowerOfChoicesBalancer, type PowerOfChoicesOptions } from './PowerOfChoicesBalancer.js';

/** Options of {@link LeastRequestBalancer}. */
export type LeastRequestOptions = PowerOfChoicesOptions;

/** Power of two choices on in-flight requests. */
export class LeastRequestBalancer<E extends Endpoint = Endpoint> extends PowerOfChoicesBalancer<E> {
  readonly name: string = 'least-request';

  constructor(options: LeastRequestOptions = {}) {
    super(options, 'least-request balancer');
  }

  protected cost(endpoint: E): number {
    return (endpoint.inflight + 1) / endpoint.weight;
  }
}
