import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TDigest } from '../../src/observe/TDigest.js';
import { seededRandom } from '../helpers/random.js';

/** The fraction of `sorted` strictly below `value`, and at or below it. */
function rankOf(sorted: readonly number[], value: number): [number, number] {
  let below = 0;
  let atOrBelow = 0;
  for (const x of sorted) {
    if (x < value) below++;
    if (x <= value) atOrBelow++;
  }
  return [below / sorted.length, atOrBelow / sorted.length];
}

/** How far the estimate's rank is from q, in quantile units (0 when q is inside its rank range). */
function rankError(sorted: readonly number[], estimate: number, q: number): number {
  const [low, high] = rankOf(sorted, estimate);
  return q < low ? low - q : q > high ? q - high : 0;
}

const QUANTILES = [0.01, 0.1, 0.5, 0.9, 0.95, 0.99, 0.999];

describe('TDigest', () => {
  it('estimates quantiles of skewed latencies within a small rank error, tighter at the tails', () => {
    const random = seededRandom(7);
    const digest = new TDigest();
    const samples: number[] = [];
    for (let i = 0; i < 100_000; i++) {
      // Log-normal-ish latencies: mostly 1–10 ms, a long tail to seconds.
      const value = Math.exp(1 + 1.2 * (random() + random() + random() - 1.5) * 2);
      samples.push(value);
      digest.add(value);
    }
    samples.sort((a, b) => a - b);
    expect(digest.count).toBe(100_000);
    for (const q of QUANTILES) {
      const error = rankError(samples, digest.quantile(q), q);
      // k1 keeps centroids near q small: the bound tightens with q(1 − q).
      expect(error, `q=${q}`).toBeLessThan(Math.max(0.0005, 0.05 * Math.sqrt(q * (1 - q))));
    }
    expect(digest.quantile(0)).toBe(samples[0]);
    expect(digest.quantile(1)).toBe(samples[samples.length - 1]);
  });

  it('keeps quantiles monotonic, inside [min, max], for any input (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: -1e6, max: 1e6, noNaN: true }), { minLength: 1, maxLength: 3000 }),
        (values) => {
          const digest = new TDigest({ compression: 20 });
          for (const value of values) digest.add(value);
          const min = Math.min(...values);
          const max = Math.max(...values);
          let last = Number.NEGATIVE_INFINITY;
          for (let q = 0; q <= 1.0001; q += 0.05) {
            const estimate = digest.quantile(Math.min(q, 1));
            expect(estimate).toBeGreaterThanOrEqual(last);
            expect(estimate).toBeGreaterThanOrEqual(min);
            expect(estimate).toBeLessThanOrEqual(max);
            last = estimate;
          }
          expect(digest.count).toBe(values.length);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('merges digests into one that answers like a digest of all the samples (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 10_000 }), { minLength: 200, maxLength: 4000 }),
        fc.array(fc.integer({ min: 5_000, max: 20_000 }), { minLength: 200, maxLength: 4000 }),
        (left, right) => {
          const a = new TDigest();
          const b = new TDigest();
          for (const value of left) a.add(value);
          for (const value of right) b.add(value);
          const merged = new TDigest();
          merged.addDigest(a);
          merged.addDigest(b);
          expect(merged.count).toBe(left.length + right.length);
          const all = [...left, ...right].sort((x, y) => x - y);
          for (const q of [0.05, 0.5, 0.95]) {
            expect(rankError(all, merged.quantile(q), q)).toBeLessThan(0.03);
          }
        },
      ),
      { numRuns: 50 },
    );
  });

  it('holds at most about δ centroids however many samples it sees, and can be reset', () => {
    const digest = new TDigest({ compression: 50, bufferSize: 100 });
    for (let i = 0; i < 50_000; i++) digest.add(i % 977);
    expect(digest.count).toBe(50_000);
    expect(digest.centroidCount).toBeLessThanOrEqual(51);
    expect(digest.centroidCount).toBeGreaterThan(10);
    expect(digest.quantile(0.5)).toBeGreaterThan(440);
    expect(digest.quantile(0.5)).toBeLessThan(537);
    digest.reset();
    expect(digest.count).toBe(0);
    expect(digest.quantile(0.5)).toBeNaN();
    digest.add(3);
    expect(digest.quantile(0.5)).toBe(3);
  });

  it.each([
    [{ compression: 5 }, /compression must be a number >= 10/],
    [{ bufferSize: 0 }, /bufferSize must be an integer >= 1/],
  ])('rejects %j', (options, message) => {
    expect(() => new TDigest(options)).toThrow(message);
  });
});
