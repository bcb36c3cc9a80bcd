import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RandomBalancer } from '../../src/balancer/RandomBalancer.js';
import { WeightedSampler } from '../../src/balancer/WeightedSampler.js';
import { endpoints, tally } from '../helpers/endpoints.js';
import { scriptedRandom, seededRandom } from '../helpers/random.js';

describe('RandomBalancer', () => {
  it('picks in proportion to weight, within 3 % of the expected share over 60,000 picks', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 10 }), { minLength: 2, maxLength: 8 }),
        fc.integer(),
        (weights, seed) => {
          const balancer = new RandomBalancer({ random: seededRandom(seed) });
          balancer.update(endpoints(weights.length, weights));
          const picks = 60_000;
          const counts = tally(() => balancer.pick(), picks);
          const total = weights.reduce((a, b) => a + b, 0);
          weights.forEach((w, i) => {
            const expected = (w / total) * picks;
            // 3 % of all picks is over 5 standard deviations for any share.
            expect(Math.abs((counts.get(`e${i}`) ?? 0) - expected)).toBeLessThan(0.03 * picks);
          });
        },
      ),
      { numRuns: 25 },
    );
  });

  it('maps the random number straight to an index when weights are equal', () => {
    const balancer = new RandomBalancer({ random: scriptedRandom([0, 0.26, 0.5, 0.99]) });
    balancer.update(endpoints(4));
    expect([1, 2, 3, 4].map(() => balancer.pick()?.id)).toEqual(['e0', 'e1', 'e2', 'e3']);
  });

  it('draws among the non-excluded in proportion to weight once redraws fail', () => {
    // Four redraws land on excluded e0, then the weighted draw over e1 (1) and e2 (3) takes 0.5 → e2.
    const balancer = new RandomBalancer({ random: scriptedRandom([0, 0, 0, 0, 0.5]) });
    balancer.update(endpoints(3, [1, 1, 3]));
    expect(balancer.pick({ exclude: new Set(['e0']) })?.id).toBe('e2');
  });

  it('rejects a random option that is not a function, and unknown options', () => {
    expect(() => new RandomBalancer({ random: 4 as never })).toThrow(/random must be a function/);
    expect(() => new RandomBalancer({ seed: 4 } as never)).toThrow(/unknown option "seed"/);
  });
});

describe('WeightedSampler', () => {
  // Equal weights index directly; small integers use the slot table; large integers (total > 16,384)
  // and fractions, the alias table.
  const weightSets = fc.oneof(
    fc.integer({ min: 1, max: 30 }).map((n) => new Array<number>(n).fill(3)),
    fc.array(fc.integer({ min: 0, max: 50 }), { minLength: 1, maxLength: 20 }),
    fc.array(fc.integer({ min: 0, max: 100_000 }), { minLength: 1, maxLength: 20 }),
    fc.array(fc.double({ min: 0, max: 10, noNaN: true }), { minLength: 1, maxLength: 20 }),
  );

  it('gives each index exactly its probability over a uniform grid of draws', () => {
    fc.assert(
      fc.property(weightSets, (weights) => {
        fc.pre(weights.reduce((a, b) => a + b, 0) > 1e-6);
        const table = new WeightedSampler(weights);
        const total = weights.reduce((a, b) => a + b, 0);
        const grid = 100_000;
        const counts = new Array<number>(weights.length).fill(0);
        for (let i = 0; i < grid; i++) {
          const index = table.sample((i + 0.5) / grid);
          counts[index] = (counts[index] as number) + 1;
        }
        weights.forEach((w, i) => {
          expect(Math.abs((counts[i] as number) / grid - w / total)).toBeLessThan(0.001);
        });
      }),
      { numRuns: 100 },
    );
  });
});
