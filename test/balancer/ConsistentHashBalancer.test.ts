import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConsistentHashBalancer } from '../../src/balancer/ConsistentHashBalancer.js';
import { IpHashBalancer } from '../../src/balancer/IpHashBalancer.js';
import { endpoint, endpoints, type TestEndpoint } from '../helpers/endpoints.js';
import { seededRandom } from '../helpers/random.js';

const keys = Array.from({ length: 20_000 }, (_, i) => `session-${i}-${(i * 2654435761) >>> 0}`);

function owners(balancer: ConsistentHashBalancer<TestEndpoint>): string[] {
  return keys.map((key) => (balancer.pick({ key }) as TestEndpoint).id);
}

describe('ConsistentHashBalancer', () => {
  it('sends a key to the same endpoint every time, whatever the order of update()', () => {
    const a = new ConsistentHashBalancer<TestEndpoint>();
    const b = new ConsistentHashBalancer<TestEndpoint>();
    a.update(endpoints(8));
    b.update(endpoints(8).reverse());
    expect(owners(a)).toEqual(owners(b));
    expect(a.pick({ key: new TextEncoder().encode('session-1') })?.id).toBe(a.pick({ key: 'session-1' })?.id);
  });

  it('moves only the keys of a removed endpoint, about 1/n of them', () => {
    for (const n of [5, 10, 40]) {
      const balancer = new ConsistentHashBalancer<TestEndpoint>();
      balancer.update(endpoints(n));
      const before = owners(balancer);
      balancer.update(endpoints(n).filter((e) => e.id !== 'e3'));
      const after = owners(balancer);
      let moved = 0;
      before.forEach((id, i) => {
        if (id !== after[i]) {
          moved++;
          expect(id).toBe('e3');
        }
      });
      // Measured by `npm run bench disruption`: 0.87–1.21 × 1/n for n = 5…100 (docs/benchmarks.md).
      expect(moved / keys.length).toBeGreaterThan(0.6 / n);
      expect(moved / keys.length).toBeLessThan(1.4 / n);
    }
  });

  it('moves only keys to an added endpoint, about 1/(n+1) of them', () => {
    const n = 10;
    const balancer = new ConsistentHashBalancer<TestEndpoint>();
    balancer.update(endpoints(n));
    const before = owners(balancer);
    balancer.update(endpoints(n + 1));
    const after = owners(balancer);
    let moved = 0;
    before.forEach((id, i) => {
      if (id !== after[i]) {
        moved++;
        expect(after[i]).toBe(`e${n}`);
      }
    });
    expect(moved / keys.length).toBeGreaterThan(0.6 / (n + 1));
    expect(moved / keys.length).toBeLessThan(1.4 / (n + 1));
  });

  it('gives keys in proportion to weight', () => {
    const balancer = new ConsistentHashBalancer<TestEndpoint>();
    balancer.update([endpoint('a', { weight: 3 }), endpoint('b'), endpoint('c')]);
    const share = owners(balancer).filter((id) => id === 'a').length / keys.length;
    expect(share).toBeGreaterThan(0.5);
    expect(share).toBeLessThan(0.7);
  });

  it('with bounded loads, never lets an endpoint exceed ceil(c × average) in flight', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 12 }),
        fc.double({ min: 1.05, max: 2, noNaN: true }),
        fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 200, maxLength: 400 }),
        (n, c, hotKeys) => {
          const list = endpoints(n);
          const balancer = new ConsistentHashBalancer<TestEndpoint>({ boundedLoad: c });
          balancer.update(list);
          const inflight: TestEndpoint[] = [];
          hotKeys.forEach((hot, step) => {
            // Half the time a request ends (the oldest), so loads rise and fall.
            if (step % 2 === 1 && inflight.length > 0) (inflight.shift() as TestEndpoint).inflight--;
            const total = list.reduce((sum, e) => sum + e.inflight, 0) + 1;
            const picked = balancer.pick({ key: `hot-${hot}` }) as TestEndpoint;
            picked.inflight++;
            inflight.push(picked);
            expect(picked.inflight).toBeLessThanOrEqual(Math.ceil((c * total) / n));
          });
        },
      ),
      { numRuns: 60 },
    );
  });

  it('without bounded loads piles hot keys onto one endpoint (the contrast)', () => {
    const list = endpoints(4);
    const balancer = new ConsistentHashBalancer<TestEndpoint>();
    balancer.update(list);
    for (let i = 0; i < 40; i++) (balancer.pick({ key: 'hot' }) as TestEndpoint).inflight++;
    expect(Math.max(...list.map((e) => e.inflight))).toBe(40);
  });

  it('spreads keyless picks with the random source', () => {
    const balancer = new ConsistentHashBalancer<TestEndpoint>({ random: seededRandom(1) });
    balancer.update(endpoints(4));
    const seen = new Set(Array.from({ length: 100 }, () => balancer.pick()?.id));
    expect(seen.size).toBe(4);
  });

  it('validates its options', () => {
    expect(() => new ConsistentHashBalancer({ boundedLoad: 1 })).toThrow(
      /boundedLoad must be a finite number > 1, got 1/,
    );
    expect(() => new ConsistentHashBalancer({ virtualNodes: 0 })).toThrow(
      /virtualNodes must be an integer >= 1/,
    );
    expect(() => new ConsistentHashBalancer({ tableSize: 7 } as never)).toThrow(/unknown option "tableSize"/);
  });
});

describe('IpHashBalancer', () => {
  it('hashes an IPv4-mapped IPv6 address as its IPv4 form', () => {
    const balancer = new IpHashBalancer<TestEndpoint>();
    balancer.update(endpoints(16));
    for (let i = 0; i < 200; i++) {
      const ip = `10.0.${i >> 4}.${i}`;
      expect(balancer.pick({ key: `::ffff:${ip}` })?.id).toBe(balancer.pick({ key: ip })?.id);
    }
  });

  it('keeps each client on one endpoint and spreads clients across all', () => {
    const balancer = new IpHashBalancer<TestEndpoint>();
    balancer.update(endpoints(4));
    const seen = new Set<string>();
    for (let i = 0; i < 256; i++) {
      const first = balancer.pick({ key: `192.168.1.${i}` })?.id as string;
      expect(balancer.pick({ key: `192.168.1.${i}` })?.id).toBe(first);
      seen.add(first);
    }
    expect(seen.size).toBe(4);
    expect(balancer.name).toBe('ip-hash');
  });
});
