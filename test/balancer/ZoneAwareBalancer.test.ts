import { describe, expect, it } from 'vitest';
import { ZoneAwareBalancer } from '../../src/balancer/ZoneAwareBalancer.js';
import { endpoint, type TestEndpoint, tally } from '../helpers/endpoints.js';
import { seededRandom } from '../helpers/random.js';

function zone(name: string, count: number): TestEndpoint[] {
  return Array.from({ length: count }, (_, i) => endpoint(`${name}${i}`, { zone: name }));
}

const localShareOf = (counts: Map<string, number>, total: number) =>
  [...counts].filter(([id]) => id.startsWith('a')).reduce((sum, [, c]) => sum + c, 0) / total;

describe('ZoneAwareBalancer', () => {
  it('keeps all traffic local while the local zone is healthy', () => {
    const all = [...zone('a', 4), ...zone('b', 4), ...zone('c', 4)];
    const balancer = new ZoneAwareBalancer<TestEndpoint>({ localZone: 'a', random: seededRandom(1) });
    balancer.update(all, all);
    expect(balancer.localShare).toBe(1);
    expect(
      localShareOf(
        tally(() => balancer.pick(), 1000),
        1000,
      ),
    ).toBe(1);
  });

  it('keeps all traffic local down to 1 / 1.4 health, then spills in proportion', () => {
    const local = zone('a', 10);
    const remote = [...zone('b', 10), ...zone('c', 10)];
    const all = [...local, ...remote];
    const balancer = new ZoneAwareBalancer<TestEndpoint>({ localZone: 'a', random: seededRandom(2) });
    balancer.update([...local.slice(0, 8), ...remote], all); // 80 % × 1.4 ≥ 1
    expect(balancer.localShare).toBe(1);
    balancer.update([...local.slice(0, 5), ...remote], all); // 50 % × 1.4 = 70 %
    expect(balancer.localShare).toBeCloseTo(0.7, 10);
    const share = localShareOf(
      tally(() => balancer.pick(), 20_000),
      20_000,
    );
    expect(share).toBeGreaterThan(0.68);
    expect(share).toBeLessThan(0.72);
  });

  it('sends everything remote when no local endpoint is eligible, and local when no remote one is', () => {
    const local = zone('a', 2);
    const remote = zone('b', 2);
    const balancer = new ZoneAwareBalancer<TestEndpoint>({ localZone: 'a', random: seededRandom(3) });
    balancer.update(remote, [...local, ...remote]);
    expect(balancer.pick()?.zone).toBe('b');
    balancer.update(local.slice(0, 1), [...local, ...remote]); // 50 %: 70 % local, but no remote eligible
    for (let i = 0; i < 50; i++) expect(balancer.pick()?.id).toBe('a0');
  });

  it('with Infinity as the factor spills only when the local zone is empty', () => {
    const all = [...zone('a', 10), ...zone('b', 10)];
    const balancer = new ZoneAwareBalancer<TestEndpoint>({
      localZone: 'a',
      overprovisioningFactor: Number.POSITIVE_INFINITY,
    });
    balancer.update([all[0] as TestEndpoint, ...all.slice(10)], all);
    expect(balancer.localShare).toBe(1);
  });

  it('validates its options at construction', () => {
    expect(() => new ZoneAwareBalancer({ localZone: '' })).toThrow(/localZone must be a non-empty string/);
    expect(() => new ZoneAwareBalancer({ localZone: 'a', overprovisioningFactor: 0.5 })).toThrow(
      /overprovisioningFactor must be a finite number >= 1/,
    );
    expect(() => new ZoneAwareBalancer({ localZone: 'a', inner: 'nope' as never })).toThrow(
      /balancer must be one of/,
    );
  });
});
