import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Balancer } from '../../src/balancer/Balancer.js';
import { LeastRequestBalancer } from '../../src/balancer/LeastRequestBalancer.js';
import { RandomBalancer } from '../../src/balancer/RandomBalancer.js';
import { endpoint, endpoints, type TestEndpoint, tally } from '../helpers/endpoints.js';
import { scriptedRandom, seededRandom } from '../helpers/random.js';

/** Runs a closed system: `concurrency` requests stay in flight, the oldest finishing as each new one starts. */
function maxLoad(
  balancer: Balancer<TestEndpoint>,
  list: TestEndpoint[],
  concurrency: number,
  steps: number,
): number {
  const queue: TestEndpoint[] = [];
  let worst = 0;
  for (let i = 0; i < steps; i++) {
    if (queue.length === concurrency) (queue.shift() as TestEndpoint).inflight--;
    const picked = balancer.pick() as TestEndpoint;
    picked.inflight++;
    queue.push(picked);
    for (const e of list) worst = Math.max(worst, e.inflight);
  }
  return worst;
}

describe('LeastRequestBalancer (P2C)', () => {
  it('takes the less loaded of the two drawn endpoints, and two distinct ones', () => {
    const list = [
      endpoint('a', { inflight: 5 }),
      endpoint('b', { inflight: 1 }),
      endpoint('c', { inflight: 3 }),
    ];
    // First draw 0.1 → a; second 0.99 over the two others → c (index 2): c (3) beats a (5).
    const balancer = new LeastRequestBalancer({ random: scriptedRandom([0.1, 0.99, 0.1, 0.1]) });
    balancer.update(list);
    expect(balancer.pick()?.id).toBe('c');
    // 0.1 → a; 0.1 over the others → b (index 0 shifted past a to 1): b (1) beats a.
    expect(balancer.pick()?.id).toBe('b');
  });

  it('matches the exact P2C distribution within 3 % when all are idle (seeded)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 2, maxLength: 6 }),
        fc.integer(),
        (weights, seed) => {
          const balancer = new LeastRequestBalancer({ random: seededRandom(seed) });
          balancer.update(endpoints(weights.length, weights));
          const picks = 20_000;
          const counts = tally(() => balancer.pick(), picks);
          // Idle, the cost is 1 / weight: of the two weighted draws the heavier wins, the first on a
          // tie. So i is picked when drawn first against one no heavier, or second against a lighter.
          const total = weights.reduce((a, b) => a + b, 0);
          const share = (test: (w: number) => boolean) =>
            weights.filter(test).reduce((a, b) => a + b, 0) / total;
          const equal = weights.every((w) => w === weights[0]);
          weights.forEach((w, i) => {
            const expected = equal
              ? 1 / weights.length
              : (w / total) * (share((v) => v <= w) + share((v) => v < w));
            expect(Math.abs((counts.get(`e${i}`) ?? 0) / picks - expected)).toBeLessThan(0.03);
          });
        },
      ),
      { numRuns: 30 },
    );
  });

  it('keeps the busiest endpoint far below what random choice leads to', () => {
    const seeds = [1, 2, 3, 4, 5];
    for (const seed of seeds) {
      const p2cList = endpoints(50);
      const p2c = new LeastRequestBalancer<TestEndpoint>({ random: seededRandom(seed) });
      p2c.update(p2cList);
      const randomList = endpoints(50);
      const random = new RandomBalancer<TestEndpoint>({ random: seededRandom(seed) });
      random.update(randomList);
      const p2cWorst = maxLoad(p2c, p2cList, 500, 20_000);
      const randomWorst = maxLoad(random, randomList, 500, 20_000);
      // Mean load is 10. P2C's maximum stays within a few of it; random's strays much further.
      expect(p2cWorst).toBeLessThanOrEqual(14);
      expect(randomWorst).toBeGreaterThan(p2cWorst + 5);
    }
  });

  it('validates choices', () => {
    expect(() => new LeastRequestBalancer({ choices: 1 })).toThrow(/choices must be an integer >= 2, got 1/);
    expect(() => new LeastRequestBalancer({ choices: 2.5 })).toThrow(/choices/);
  });
});
