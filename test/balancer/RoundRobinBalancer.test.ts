import { describe, expect, it } from 'vitest';
import { RoundRobinBalancer } from '../../src/balancer/RoundRobinBalancer.js';
import { endpoint, endpoints } from '../helpers/endpoints.js';

const ids = (balancer: RoundRobinBalancer, count: number, exclude?: Set<string>) =>
  Array.from({ length: count }, () => balancer.pick(exclude ? { exclude } : undefined)?.id).join(' ');

describe('RoundRobinBalancer', () => {
  it('takes endpoints in turn, ignoring weight but skipping weight 0', () => {
    const balancer = new RoundRobinBalancer();
    balancer.update([
      endpoint('a', { weight: 5 }),
      endpoint('b', { weight: 0 }),
      endpoint('c'),
      endpoint('d'),
    ]);
    expect(ids(balancer, 7)).toBe('a c d a c d a');
  });

  it('skips excluded endpoints and carries on after the one it returned', () => {
    const balancer = new RoundRobinBalancer();
    balancer.update(endpoints(4));
    expect(ids(balancer, 1)).toBe('e0');
    expect(ids(balancer, 2, new Set(['e1', 'e2']))).toBe('e3 e0');
    expect(ids(balancer, 3)).toBe('e1 e2 e3');
  });

  it('keeps its place when the set shrinks below it', () => {
    const balancer = new RoundRobinBalancer();
    balancer.update(endpoints(5));
    ids(balancer, 4);
    balancer.update(endpoints(2));
    expect(ids(balancer, 3)).toBe('e0 e1 e0');
  });
});
