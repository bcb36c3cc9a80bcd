import { describe, expect, it } from 'vitest';
import { PriorityBalancer } from '../../src/balancer/PriorityBalancer.js';
import { RoundRobinBalancer } from '../../src/balancer/RoundRobinBalancer.js';
import { endpoint, type TestEndpoint, tally } from '../helpers/endpoints.js';
import { seededRandom } from '../helpers/random.js';

function tier(priority: number, count: number): TestEndpoint[] {
  return Array.from({ length: count }, (_, i) => endpoint(`p${priority}-${i}`, { priority }));
}

const backupShare = (counts: Map<string, number>, total: number) =>
  [...counts].filter(([id]) => !id.startsWith('p0')).reduce((sum, [, c]) => sum + c, 0) / total;

describe('PriorityBalancer', () => {
  it('sends nothing to backups while the primaries are healthy', () => {
    const all = [...tier(0, 3), ...tier(1, 2)];
    const balancer = new PriorityBalancer<TestEndpoint>({ random: seededRandom(1) });
    balancer.update(all, all);
    expect(
      backupShare(
        tally(() => balancer.pick(), 1000),
        1000,
      ),
    ).toBe(0);
    expect([...balancer.shares]).toEqual([
      [0, 1],
      [1, 0],
    ]);
  });

  it('moves traffic to backups as primaries fail, as Envoy computes priority load', () => {
    const primaries = tier(0, 10);
    const backups = tier(1, 10);
    const all = [...primaries, ...backups];
    const balancer = new PriorityBalancer<TestEndpoint>({ random: seededRandom(2) });
    balancer.update([...primaries.slice(0, 5), ...backups], all); // 50 % × 1.4 = 70 % primary
    expect(balancer.shares.get(0)).toBeCloseTo(0.7, 10);
    expect(balancer.shares.get(1)).toBeCloseTo(0.3, 10);
    const share = backupShare(
      tally(() => balancer.pick(), 20_000),
      20_000,
    );
    expect(share).toBeGreaterThan(0.28);
    expect(share).toBeLessThan(0.32);
    balancer.update(backups, all);
    expect(balancer.shares.get(1)).toBe(1);
  });

  it('scales shares up when the tiers together are short, and cascades through three tiers', () => {
    const all = [...tier(0, 10), ...tier(1, 10), ...tier(2, 10)];
    const balancer = new PriorityBalancer<TestEndpoint>();
    // 20 % of primaries (28 %), 20 % of tier 1 (28 %), 10 % of tier 2 (14 %): 70 % in all, scaled to 100 %.
    balancer.update([...all.slice(0, 2), ...all.slice(10, 12), all[20] as TestEndpoint], all);
    expect(balancer.shares.get(0)).toBeCloseTo(0.4, 10);
    expect(balancer.shares.get(1)).toBeCloseTo(0.4, 10);
    expect(balancer.shares.get(2)).toBeCloseTo(0.2, 10);
  });

  it('with Infinity as the factor behaves as nginx backup: backups only with no primary left', () => {
    const all = [...tier(0, 4), ...tier(1, 2)];
    const balancer = new PriorityBalancer<TestEndpoint>({ overprovisioningFactor: Number.POSITIVE_INFINITY });
    balancer.update([all[0] as TestEndpoint, ...all.slice(4)], all);
    expect(tally(() => balancer.pick(), 100).get('p0-0')).toBe(100);
  });

  it('fails over to another tier when the drawn one has only excluded endpoints', () => {
    const all = [...tier(0, 1), ...tier(1, 1)];
    const balancer = new PriorityBalancer<TestEndpoint>({ inner: () => new RoundRobinBalancer() });
    balancer.update(all, all);
    expect(balancer.pick({ exclude: new Set(['p0-0']) })?.id).toBe('p1-0');
  });

  it('treats a one-argument update as all healthy', () => {
    const balancer = new PriorityBalancer<TestEndpoint>();
    balancer.update([...tier(0, 1), ...tier(1, 1)]);
    expect(balancer.shares.get(0)).toBe(1);
  });
});
