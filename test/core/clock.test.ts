import { describe, expect, it } from 'vitest';
import { systemClock, systemRandom } from '../../src/core/clock.js';

describe('systemRandom', () => {
  it('returns numbers in [0, 1) spread evenly over ten buckets', () => {
    const buckets = new Array<number>(10).fill(0);
    const draws = 200_000;
    for (let i = 0; i < draws; i++) {
      const u = systemRandom();
      expect(u >= 0 && u < 1).toBe(true);
      const bucket = Math.floor(u * 10);
      buckets[bucket] = (buckets[bucket] as number) + 1;
    }
    // Chi-square with 9 degrees of freedom: 27.9 is the 0.001 critical value.
    const expected = draws / 10;
    const chiSquare = buckets.reduce((sum, observed) => sum + (observed - expected) ** 2 / expected, 0);
    expect(chiSquare).toBeLessThan(27.9);
  });

  it('does not repeat a short cycle', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 10_000; i++) seen.add(systemRandom());
    expect(seen.size).toBeGreaterThan(9_990);
  });
});

describe('systemClock', () => {
  it('is monotonic and its timers can be cancelled and do not hold the process open', () => {
    const a = systemClock.now();
    const b = systemClock.now();
    expect(b).toBeGreaterThanOrEqual(a);
    let fired = false;
    const handle = systemClock.setTimeout(() => {
      fired = true;
    }, 10);
    expect((handle as NodeJS.Timeout).hasRef()).toBe(false);
    systemClock.clearTimeout(handle);
    systemClock.clearTimeout(undefined); // unknown handles are ignored
    expect(fired).toBe(false);
  });
});
