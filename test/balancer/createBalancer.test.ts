import { describe, expect, expectTypeOf, it } from 'vitest';
import type { Balancer } from '../../src/balancer/Balancer.js';
import { balancerNames, createBalancer } from '../../src/balancer/createBalancer.js';
import type { Endpoint } from '../../src/core/endpoint.js';
import { endpoints, type TestEndpoint } from '../helpers/endpoints.js';

describe('createBalancer', () => {
  it.each(balancerNames)('creates %s by name', (name) => {
    const balancer = createBalancer(name);
    expect(balancer.name).toBe(name);
    balancer.update(endpoints(3));
    expect(balancer.pick({ key: 'k' })).toBeDefined();
  });

  it('names every algorithm of DESIGN.md', () => {
    expect([...balancerNames].sort()).toEqual(
      [
        'consistent-hash',
        'ip-hash',
        'least-connections',
        'least-request',
        'maglev',
        'peak-ewma',
        'random',
        'round-robin',
        'weighted-round-robin',
      ].sort(),
    );
  });

  it('refuses an unknown name and an option the algorithm does not take', () => {
    expect(() => createBalancer('fastest' as never)).toThrow(
      /balancer must be one of round-robin, .* got "fastest"/,
    );
    expect(() => createBalancer('round-robin', { tableSize: 7 })).toThrow(
      /round-robin balancer: unknown option "tableSize" \(known options: none\)/,
    );
    expect(() => createBalancer('maglev', { virtualNodes: 7 })).toThrow(
      /maglev balancer: unknown option "virtualNodes"/,
    );
  });

  it('is typed by the endpoint type', () => {
    const balancer = createBalancer<TestEndpoint>('least-request');
    expectTypeOf(balancer).toEqualTypeOf<Balancer<TestEndpoint>>();
    expectTypeOf(balancer.pick()).toEqualTypeOf<TestEndpoint | undefined>();
    expectTypeOf(createBalancer('random')).toEqualTypeOf<Balancer<Endpoint>>();
  });
});
