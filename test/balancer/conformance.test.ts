/**
 * What every balancer promises, checked for each built-in algorithm and wrapper alike: exclusions
 * honoured, weight 0 skipped, `undefined` only when nothing is left, 0 / 1 / 10,000 endpoints, and
 * duplicate ids or bad weights refused in `update()`.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Balancer } from '../../src/balancer/Balancer.js';
import { balancerNames, createBalancer } from '../../src/balancer/createBalancer.js';
import { PriorityBalancer } from '../../src/balancer/PriorityBalancer.js';
import { ZoneAwareBalancer } from '../../src/balancer/ZoneAwareBalancer.js';
import type { Endpoint } from '../../src/core/endpoint.js';
import { endpoint, endpoints, type TestEndpoint } from '../helpers/endpoints.js';
import { seededRandom } from '../helpers/random.js';

const makers: [string, () => Balancer<TestEndpoint>][] = [
  ...balancerNames.map((name): [string, () => Balancer<TestEndpoint>] => [
    name,
    () =>
      createBalancer<TestEndpoint>(
        name,
        name === 'round-robin' || name === 'weighted-round-robin' || name === 'least-connections'
          ? {}
          : { random: seededRandom(7) },
      ),
  ]),
  [
    'consistent-hash (bounded)',
    () => createBalancer('consistent-hash', { boundedLoad: 1.25, random: seededRandom(7) }),
  ],
  ['zone-aware', () => new ZoneAwareBalancer<TestEndpoint>({ localZone: 'a', random: seededRandom(7) })],
  ['priority', () => new PriorityBalancer<TestEndpoint>({ inner: 'least-request', random: seededRandom(7) })],
];

function withKey(i: number): { key: string } {
  return { key: `key-${i}` };
}

describe.each(makers)('%s', (_name, make) => {
  it('returns undefined with no endpoints, and the only one with one', () => {
    const balancer = make();
    expect(balancer.pick()).toBeUndefined();
    balancer.update([]);
    expect(balancer.pick(withKey(1))).toBeUndefined();
    const only = endpoint('only');
    balancer.update([only]);
    for (let i = 0; i < 20; i++) expect(balancer.pick(withKey(i))).toBe(only);
    expect(balancer.pick({ exclude: new Set(['only']) })).toBeUndefined();
  });

  it('never picks an endpoint of weight 0, and returns undefined when all weigh 0', () => {
    const balancer = make();
    const list = [endpoint('a', { weight: 0 }), endpoint('b', { weight: 2 }), endpoint('c', { weight: 0 })];
    balancer.update(list);
    for (let i = 0; i < 200; i++) expect(balancer.pick(withKey(i))?.id).toBe('b');
    balancer.update([endpoint('a', { weight: 0 })]);
    expect(balancer.pick()).toBeUndefined();
  });

  it('honours exclude: never an excluded id, undefined only when all are excluded', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 12 }),
        fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }),
        fc.string({ maxLength: 10 }),
        (n, weights, excludedFlags, key) => {
          const balancer = make();
          const list = endpoints(n, weights).map((e, i) => ({
            ...e,
            zone: i % 2 ? 'a' : 'b',
            priority: i % 3 === 0 ? 1 : 0,
          }));
          balancer.update(list);
          const exclude = new Set(list.filter((_, i) => excludedFlags[i]).map((e) => e.id));
          for (let attempt = 0; attempt < 5; attempt++) {
            const picked = balancer.pick({ key, exclude });
            if (exclude.size === list.length) {
              expect(picked).toBeUndefined();
            } else {
              expect(picked).toBeDefined();
              expect(exclude.has((picked as Endpoint).id)).toBe(false);
            }
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it('works with 10,000 endpoints and picks from the set given', () => {
    const balancer = make();
    const list = endpoints(10_000, [1, 2, 3]).map((e, i) => ({ ...e, zone: i % 2 ? 'a' : 'b' }));
    balancer.update(list);
    const ids = new Set(list.map((e) => e.id));
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const picked = balancer.pick(withKey(i));
      expect(picked && ids.has(picked.id)).toBe(true);
      seen.add((picked as Endpoint).id);
    }
    // Every algorithm spreads 2,000 picks over many of 10,000 endpoints (keys differ per pick).
    expect(seen.size).toBeGreaterThan(500);
  });

  it('refuses duplicate ids and bad weights in update(), keeping the previous set', () => {
    const balancer = make();
    const good = [endpoint('a'), endpoint('b')];
    balancer.update(good);
    expect(() => balancer.update([endpoint('a'), endpoint('b'), endpoint('a')])).toThrow(
      /duplicate endpoint id "a"/,
    );
    expect(() => balancer.update([endpoint('a', { weight: -1 })])).toThrow(
      /endpoint "a" weight must be a finite number >= 0, got -1/,
    );
    expect(() => balancer.update([endpoint('a', { weight: Number.NaN })])).toThrow(/weight/);
    expect(['a', 'b']).toContain(balancer.pick(withKey(3))?.id);
  });
});
