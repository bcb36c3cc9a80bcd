/**
 * Helpers every built-in balancer uses in `update()` (checking the set) and on the rare pick path
 * that honours `exclude`. None of them runs on the common pick path.
 */
import type { Endpoint } from '../core/endpoint.js';

/**
 * Checks ids and weights, then returns the endpoints that can take traffic (weight > 0), in order.
 * @throws TypeError on a missing or duplicate id, RangeError on a bad weight
 */
export function takeActive<E extends Endpoint>(endpoints: readonly E[], balancer: string): E[] {
  if (!Array.isArray(endpoints)) throw new TypeError(`${balancer}.update() takes an array of endpoints`);
  const seen = new Set<string>();
  const active: E[] = [];
  for (const endpoint of endpoints) {
    const id = endpoint?.id;
    if (typeof id !== 'string' || id === '') {
      throw new TypeError(`${balancer}.update(): every endpoint needs a non-empty string id`);
    }
    if (seen.has(id)) throw new TypeError(`${balancer}.update(): duplicate endpoint id "${id}"`);
    seen.add(id);
    const weight = endpoint.weight;
    if (typeof weight !== 'number' || !Number.isFinite(weight) || weight < 0) {
      throw new RangeError(
        `${balancer}.update(): endpoint "${id}" weight must be a finite number >= 0, got ${String(weight)}`,
      );
    }
    if (weight > 0) active.push(endpoint);
  }
  return active;
}

/** True when every endpoint has the same weight. */
export function uniformWeights(endpoints: readonly Endpoint[]): boolean {
  const first = endpoints[0]?.weight;
  for (const endpoint of endpoints) if (endpoint.weight !== first) return false;
  return true;
}

/**
 * The endpoint with the least `(inflight + 1) / weight`, scanning from `start` and skipping
 * `exclude`; ties go to the first one met from `start`. O(n). `(inflight + 1)` makes weights count
 * at zero load, as HAProxy's leastconn does.
 */
export function leastLoaded<E extends Endpoint>(
  list: readonly E[],
  start: number,
  exclude: ReadonlySet<string> | undefined,
): E | undefined {
  const n = list.length;
  let best: E | undefined;
  let bestLoad = 0;
  let bestWeight = 1;
  for (let step = 0, i = start; step < n; step++, i = i + 1 === n ? 0 : i + 1) {
    const candidate = list[i] as E;
    if (exclude?.has(candidate.id)) continue;
    const load = candidate.inflight + 1;
    // load / weight < bestLoad / bestWeight, without dividing.
    if (best === undefined || load * bestWeight < bestLoad * candidate.weight) {
      best = candidate;
      bestLoad = load;
      bestWeight = candidate.weight;
    }
  }
  return best;
}

/** Draws an index in [0, n) from a random number in [0, 1), guarding against a source that returns 1. */
export function randomIndex(random: () => number, n: number): number {
  const i = Math.floor(random() * n);
  return i < n ? i : n - 1;
}
