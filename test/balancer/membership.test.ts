import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  integerWeightDivisor,
  leastLoaded,
  negativeBit,
  otherIndex,
  takeActive,
} from '../../src/balancer/membership.js';
import { endpoint } from '../helpers/endpoints.js';
import { seededRandom } from '../helpers/random.js';

describe('balancer helpers', () => {
  it('negativeBit is 1 exactly for negative numbers (and -0)', () => {
    fc.assert(
      fc.property(fc.double({ noNaN: true }), (d) => {
        expect(negativeBit(d)).toBe(d < 0 || Object.is(d, -0) ? 1 : 0);
      }),
    );
    expect(negativeBit(-Number.MIN_VALUE)).toBe(1);
    expect(negativeBit(Number.MIN_VALUE)).toBe(0);
  });

  it('otherIndex draws uniformly among the n - 1 other indexes', () => {
    const random = seededRandom(9);
    const counts = new Array<number>(5).fill(0);
    for (let i = 0; i < 40_000; i++) {
      const index = otherIndex(random, 5, 2);
      counts[index] = (counts[index] as number) + 1;
    }
    expect(counts[2]).toBe(0);
    for (const i of [0, 1, 3, 4]) expect(Math.abs((counts[i] as number) - 10_000)).toBeLessThan(400);
  });

  it('integerWeightDivisor is the GCD of integers and 0 when any weight is fractional', () => {
    expect(integerWeightDivisor([6, 9, 12])).toBe(3);
    expect(integerWeightDivisor([5])).toBe(5);
    expect(integerWeightDivisor([2, 0.5])).toBe(0);
    expect(integerWeightDivisor([])).toBe(0);
  });

  it('takeActive keeps order and drops weight 0', () => {
    const list = [endpoint('a'), endpoint('b', { weight: 0 }), endpoint('c', { weight: 2 })];
    expect(takeActive(list, 'test').map((e) => e.id)).toEqual(['a', 'c']);
    expect(() => takeActive([{ ...endpoint('a'), id: '' }], 'test')).toThrow(/non-empty string id/);
    expect(() => takeActive('nope' as never, 'test')).toThrow(/takes an array/);
  });

  it('leastLoaded starts from the given position on ties and skips exclusions', () => {
    const list = [endpoint('a'), endpoint('b'), endpoint('c', { inflight: 3 })];
    expect(leastLoaded(list, 1, undefined)?.id).toBe('b');
    expect(leastLoaded(list, 1, new Set(['b']))?.id).toBe('a');
    expect(leastLoaded(list, 0, new Set(['a', 'b', 'c']))).toBeUndefined();
  });
});
