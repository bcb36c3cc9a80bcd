/**
 * What the locality and priority wrappers share: an inner balancer per group, and the health of a
 * group as the share of its endpoints that are eligible (Envoy's definition).
 */
import type { Endpoint } from '../core/endpoint.js';
import type { Balancer, BalancerName } from './Balancer.js';
import { type BalancerOptions, createBalancer } from './createBalancer.js';

/** How a wrapper makes the balancer of each group: a built-in name or a factory. */
export type InnerBalancer<E extends Endpoint> = BalancerName | (() => Balancer<E>);

/** Turns an {@link InnerBalancer} into a factory. */
export function innerFactory<E extends Endpoint>(
  inner: InnerBalancer<E> | undefined,
  options: BalancerOptions,
  option: string,
): () => Balancer<E> {
  if (inner === undefined) return () => createBalancer<E>('round-robin');
  if (typeof inner === 'function') return inner;
  if (typeof inner === 'string') {
    createBalancer(inner, options); // validates the name now, at construction
    return () => createBalancer<E>(inner, options);
  }
  throw new TypeError(`${option} must be a balancer name or a function returning a Balancer`);
}

/**
 * The share of traffic a group can take: its healthy fraction times the overprovisioning factor,
 * capped at 1 (Envoy: a priority level at 100 / 1.4 ≈ 72 % health still takes all of its traffic).
 */
export function groupCapacity(eligible: number, total: number, overprovisioningFactor: number): number {
  if (eligible === 0 || total === 0) return 0;
  return Math.min(1, (eligible / total) * overprovisioningFactor);
}
