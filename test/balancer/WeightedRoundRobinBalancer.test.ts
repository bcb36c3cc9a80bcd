import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { WeightedRoundRobinBalancer } from '../../src/balancer/WeightedRoundRobinBalancer.js';
import { endpoint, endpoints, tally } from '../helpers/endpoints.js';

/** nginx's smooth weighted round robin, one O(n) loop per pick: the reference sequence. */
function nginxSequence(weights: readonly number[], picks: number): number[] {
  const current = weights.map(() => 0);
  const total = weights.reduce((a, b) => a + b, 0);
  const out: number[] = [];
  for (let p = 0; p < picks; p++) {
    let best = -1;
    for (let i = 0; i < weights.length; i++) {
      if ((weights[i] as number) === 0) continue;
      current[i] = (current[i] as number) + (weights[i] as number);
      if (best === -1 || (current[i] as number) > (current[best] as number)) best = i;
    }
    current[best] = (current[best] as number) - total;
    out.push(best);
  }
  return out;
}

function sequence(balancer: WeightedRoundRobinBalancer, picks: number): number[] {
  return Array.from({ length: picks }, () => Number(balancer.pick()?.id.slice(1)));
}

describe('WeightedRoundRobinBalancer', () => {
  it('gives weights 5, 1, 1 as nginx does: a a b a c a a', () => {
    const balancer = new WeightedRoundRobinBalancer();
    balancer.update([endpoint('a', { weight: 5 }), endpoint('b'), endpoint('c')]);
    const picks = Array.from({ length: 14 }, () => balancer.pick()?.id).join(' ');
    expect(picks).toBe('a a b a c a a a a b a c a a');
  });

  it('is plain rotation for equal weights', () => {
    const balancer = new WeightedRoundRobinBalancer();
    balancer.update(endpoints(3, [4]));
    expect(sequence(balancer, 6)).toEqual([0, 1, 2, 0, 1, 2]);
  });

  it('repeats the exact nginx sequence for any small integer weights (table mode)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 20 }), { minLength: 1, maxLength: 12 }), (weights) => {
        fc.pre(weights.some((w) => w > 0));
        const balancer = new WeightedRoundRobinBalancer();
        balancer.update(endpoints(weights.length, weights));
        const total = weights.reduce((a, b) => a + b, 0);
        expect(sequence(balancer, 3 * total)).toEqual(nginxSequence(weights, 3 * total));
      }),
      { numRuns: 300 },
    );
  });

  it('gives each endpoint exactly its weight in every cycle, in every mode', () => {
    // Small integers (table), large co-prime integers (deadline, cycle > 65,536) and fractions (deadline).
    const weightSets = fc.oneof(
      fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 2, maxLength: 10 }),
      fc.array(fc.integer({ min: 20_000, max: 40_000 }), { minLength: 3, maxLength: 5 }),
    );
    fc.assert(
      fc.property(weightSets, (weights) => {
        const balancer = new WeightedRoundRobinBalancer();
        balancer.update(endpoints(weights.length, weights));
        const total = weights.reduce((a, b) => a + b, 0);
        for (let cycle = 0; cycle < 2; cycle++) {
          const counts = tally(() => balancer.pick(), total);
          weights.forEach((w, i) => {
            expect(counts.get(`e${i}`) ?? 0).toBe(w);
          });
        }
      }),
      { numRuns: 40 },
    );
  });

  it('spreads fractional weights in proportion, interleaved', () => {
    const balancer = new WeightedRoundRobinBalancer();
    balancer.update([endpoint('a', { weight: 0.5 }), endpoint('b', { weight: 1.5 })]);
    const picks = Array.from({ length: 8 }, () => balancer.pick()?.id).join(' ');
    // b is due at 1/3, 1, 5/3, 7/3…; a at 1, 3: b first, then a on the tie by position.
    expect(picks).toBe('b a b b b a b b');
  });

  it('lets an excluded endpoint keep its turn for the next pick', () => {
    const balancer = new WeightedRoundRobinBalancer();
    balancer.update([endpoint('a', { weight: 5 }), endpoint('b'), endpoint('c')]);
    expect(balancer.pick({ exclude: new Set(['a']) })?.id).toBe('b');
    // a was due; it goes next, and the cycle still gives a five turns, b and c one each.
    const rest = Array.from({ length: 6 }, () => balancer.pick()?.id);
    expect(rest[0]).toBe('a');
    expect(rest.filter((id) => id === 'a')).toHaveLength(5);
    expect(rest.filter((id) => id === 'c')).toHaveLength(1);
  });

  it('restarts its cycle when the set changes', () => {
    const balancer = new WeightedRoundRobinBalancer();
    balancer.update([endpoint('a', { weight: 2 }), endpoint('b')]);
    balancer.pick();
    balancer.update([endpoint('a', { weight: 2 }), endpoint('b')]);
    expect(Array.from({ length: 3 }, () => balancer.pick()?.id).join(' ')).toBe('a b a');
  });
});
