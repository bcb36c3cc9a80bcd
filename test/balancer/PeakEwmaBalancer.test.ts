import { describe, expect, it } from 'vitest';
import { PeakEwmaBalancer } from '../../src/balancer/PeakEwmaBalancer.js';
import { endpoint, tally } from '../helpers/endpoints.js';
import { seededRandom } from '../helpers/random.js';

describe('PeakEwmaBalancer', () => {
  it('prefers the faster endpoint in proportion to latency × (inflight + 1)', () => {
    const fast = endpoint('fast', { latencyEwma: 10 });
    const slow = endpoint('slow', { latencyEwma: 100 });
    const balancer = new PeakEwmaBalancer({ random: seededRandom(3) });
    balancer.update([fast, slow]);
    // With two endpoints both are always drawn: the cheaper wins every time.
    expect(tally(() => balancer.pick(), 100).get('fast')).toBe(100);
    fast.inflight = 10; // 10 × 11 = 110 > 100 × 1
    expect(balancer.pick()?.id).toBe('slow');
  });

  it('sends an unmeasured idle endpoint traffic, but not a second request before it answers', () => {
    const fresh = endpoint('fresh');
    const known = endpoint('known', { latencyEwma: 50, inflight: 3 });
    const balancer = new PeakEwmaBalancer({ random: seededRandom(4) });
    balancer.update([fresh, known]);
    expect(balancer.pick()?.id).toBe('fresh');
    fresh.inflight = 1;
    expect(balancer.pick()?.id).toBe('known');
  });

  it('weighs cost by weight', () => {
    const heavy = endpoint('heavy', { latencyEwma: 30, weight: 4 });
    const light = endpoint('light', { latencyEwma: 10 });
    const balancer = new PeakEwmaBalancer({ random: seededRandom(5) });
    balancer.update([heavy, light]);
    // 30 / 4 < 10 / 1: heavy wins whenever it is drawn, i.e. unless both weighted draws are light
    // (1/5)² = 4 % of picks.
    const heavyShare = (tally(() => balancer.pick(), 2000).get('heavy') ?? 0) / 2000;
    expect(heavyShare).toBeGreaterThan(0.93);
    expect(heavyShare).toBeLessThan(0.99);
  });
});
