/**
 * Round robin: endpoints in turn, ignoring weights (except that weight 0 takes no traffic).
 *
 * Complexity: `pick()` O(1); with `exclude`, O(n) in the worst case. `update()` O(n).
 * Guarantee: over any n consecutive picks without exclusions, every endpoint is picked exactly once.
 * Source: the classic scheduler; nginx's default without weights.
 */
import type { Endpoint } from '../core/endpoint.js';
import type { Balancer, PickContext } from './Balancer.js';
import { takeActive } from './membership.js';

/** Round robin over the endpoints with weight > 0. */
export class RoundRobinBalancer<E extends Endpoint = Endpoint> implements Balancer<E> {
  readonly name: string = 'round-robin';
  #endpoints: E[] = [];
  #next = 0;

  update(endpoints: readonly E[]): void {
    this.#endpoints = takeActive(endpoints, this.name);
    if (this.#next >= this.#endpoints.length) this.#next = 0;
  }

  pick(ctx?: PickContext): E | undefined {
    const list = this.#endpoints;
    const n = list.length;
    if (n === 0) return undefined;
    let i = this.#next;
    const exclude = ctx?.exclude;
    if (exclude === undefined || exclude.size === 0) {
      this.#next = i + 1 === n ? 0 : i + 1;
      return list[i];
    }
    for (let step = 0; step < n; step++) {
      const candidate = list[i] as E;
      i = i + 1 === n ? 0 : i + 1;
      if (!exclude.has(candidate.id)) {
        this.#next = i;
        return candidate;
      }
    }
    return undefined;
  }
}
