import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LeastConnectionsBalancer } from '../../src/balancer/LeastConnectionsBalancer.js';
import { endpoint, endpoints } from '../helpers/endpoints.js';

describe('LeastConnectionsBalancer', () => {
  it('always picks an endpoint of minimal (inflight + 1) / weight', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({ weight: fc.integer({ min: 1, max: 5 }), inflight: fc.integer({ min: 0, max: 20 }) }),
          {
            minLength: 1,
            maxLength: 20,
          },
        ),
        fc.integer({ min: 0, max: 50 }),
        (specs, warmup) => {
          const list = specs.map((spec, i) => endpoint(`e${i}`, spec));
          const balancer = new LeastConnectionsBalancer();
          balancer.update(list);
          for (let i = 0; i < warmup; i++) balancer.pick();
          const picked = balancer.pick();
          const load = (e: { inflight: number; weight: number }) => (e.inflight + 1) / e.weight;
          const minimum = Math.min(...list.map(load));
          expect(picked && load(picked)).toBe(minimum);
        },
      ),
    );
  });

  it('rotates among tied endpoints instead of always taking the first', () => {
    const balancer = new LeastConnectionsBalancer();
    const list = endpoints(3);
    balancer.update(list);
    expect([1, 2, 3, 4].map(() => balancer.pick()?.id)).toEqual(['e0', 'e1', 'e2', 'e0']);
  });

  it('follows in-flight counts as they change, and counts weight', () => {
    const list = [endpoint('a', { weight: 2 }), endpoint('b')];
    const balancer = new LeastConnectionsBalancer();
    balancer.update(list);
    // Keep every picked request in flight: a, of weight 2, ends up with twice b's load.
    for (let i = 0; i < 30; i++) (balancer.pick() as (typeof list)[number]).inflight++;
    expect(list[0]?.inflight).toBe(20);
    expect(list[1]?.inflight).toBe(10);
  });
});
