/**
 * Peak-EWMA: latency-aware power of two choices, as Finagle's and Linkerd's balancers. The cost of an
 * endpoint is its peak-EWMA response time multiplied by its requests in flight plus one (divided by
 * weight), so a slow or busy endpoint loses to a fast idle one, and the estimate decays while the
 * endpoint is idle (see core/PeakEwma.ts), so it is tried again.
 *
 * An endpoint with no measurement yet costs 0 while idle (it gets traffic at once) and a large
 * penalty once it has a request in flight, so a new endpoint is not flooded before its first answer
 * (Finagle's rule).
 *
 * Complexity: `pick()` O(1) (d = 2 draws). Source: Finagle `PeakEwma`, Linkerd/tower `PeakEwma`.
 */
import type { Endpoint } from '../core/endpoint.js';
import { PowerOfChoicesBalancer, type PowerOfChoicesOptions } from './PowerOfChoicesBalancer.js';

/** Options of {@link PeakEwmaBalancer}. */
export type PeakEwmaOptions = PowerOfChoicesOptions;

/** Cost of an unmeasured endpoint that already has requests in flight. */
const UNMEASURED_PENALTY = 1e9;

/** Latency-aware power of two choices. */
export class PeakEwmaBalancer<E extends Endpoint = Endpoint> extends PowerOfChoicesBalancer<E> {
  readonly name: string = 'peak-ewma';

  constructor(options: PeakEwmaOptions = {}) {
    super(options, 'peak-ewma balancer');
  }

  protected cost(endpoint: E): number {
    const latency = endpoint.latencyEwma ?? 0;
    const inflight = endpoint.inflight;
    if (latency > 0) return (latency * (inflight + 1)) / endpoint.weight;
    return inflight === 0 ? 0 : (UNMEASURED_PENALTY + inflight) / endpoint.weight;
  }
}
