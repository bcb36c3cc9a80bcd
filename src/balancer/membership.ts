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

/**
 * The greatest common divisor of `weights` when all are safe integers (dividing by it leaves the
 * proportions and shrinks the tables built from them); 0 when any is not an integer.
 */
export function integerWeightDivisor(weights: ArrayLike<number>): number {
  let divisor = 0;
  for (let i = 0; i < weights.length; i++) {
    let a = weights[i] as number;
    if (!Number.isSafeInteger(a)) return 0;
    let b = divisor;
    while (b !== 0) [a, b] = [b, a % b];
    divisor = a;
  }
  return divisor;
}

/** True when every weight is the same (or there are none). */
export function uniformWeights(weights: ArrayLike<number>): boolean {
  for (let i = 1; i < weights.length; i++) if (weights[i] !== weights[0]) return false;
  return true;
}

/**
 * The endpoint with the least `(inflight + 1) / weight`, scanning from `start` and skipping
 * `exclude`; ties go to the first one met from `start`. O(n), but an idle endpoint of weight
 * `maxWeight` ends the scan: nothing can be less loaded. `(inflight + 1)` makes weights count at zero
 * load, as HAProxy's leastconn does.
 */
export function leastLoaded<E extends Endpoint>(
  list: readonly E[],
  start: number,
  exclude: ReadonlySet<string> | undefined,
  maxWeight = Number.POSITIVE_INFINITY,
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
      if (load === 1 && bestWeight === maxWeight) break;
    }
  }
  return best;
}

/** Draws an index in [0, n) from a random number in [0, 1), guarding against a source that returns 1. */
export function randomIndex(random: () => number, n: number): number {
  return Math.min(Math.floor(random() * n), n - 1);
}

/** A second index in [0, n) different from `first`, drawn uniformly, without a branch. */
export function otherIndex(random: () => number, n: number, first: number): number {
  const second = randomIndex(random, n - 1);
  return second + ((first - second - 1) >>> 31);
}

// A double and its two 32-bit halves, to read a sign bit without comparing.
const signScratch = new Float64Array(1);
const signWords = new Int32Array(signScratch.buffer);
const HIGH_WORD = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 1 : 0;

/**
 * 1 when `d` is negative, else 0 (`-0` counts as negative), read from the sign bit with no branch.
 * The choices on the pick path (which of two candidates, which side of an alias cell) are coin
 * flips to the CPU: a branch there is mispredicted half the time, which measured here costs more
 * than the rest of a P2C pick. (`Math.min`/`Math.max` do not help: V8 compiles them with branches.)
 */
export function negativeBit(d: number): number {
  signScratch[0] = d;
  return (signWords[HIGH_WORD] as number) >>> 31;
}
