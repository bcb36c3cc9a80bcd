/**
 * ns per pick for every algorithm at 10, 100 and 1,000 endpoints, beside baselines run in the same
 * process: a bare array-index loop (the floor) and the npm packages `roundround` (round robin),
 * `wrr-pool` (weighted round robin), `load-balancers` (random, P2C) and `hashring` (ring hash).
 * Hash algorithms get 16-character string keys from a population of 65,536 distinct keys.
 * Heap growth is measured over 1,000,000 picks at 1,000 endpoints.
 */
import { createRequire } from 'node:module';
import {
  type Balancer,
  type BalancerName,
  createBalancer,
  type Endpoint,
  PriorityBalancer,
  ZoneAwareBalancer,
} from '../src/index.js';
import { bytes, measure, ns, printTable, registerCases, runIsolated } from './harness.js';

const require = createRequire(import.meta.url);
const { RandomBalancer: NpmRandom, P2cBalancer: NpmP2c } = require('load-balancers') as {
  RandomBalancer: new (n: number) => { pick(): number };
  P2cBalancer: new (n: number) => { pick(): number };
};
const roundround = require('roundround') as (list: unknown[]) => () => unknown;
const WrrPool = require('wrr-pool') as new () => {
  add(value: unknown, weight: number): void;
  next(): unknown;
};
const HashRing = require('hashring') as new (
  servers: Record<string, number> | string[],
) => { get(key: string): string };

const SIZES = [10, 100, 1000] as const;
const WEIGHTS = [1, 2, 3, 4];
const KEY_COUNT = 65_536;

function makeEndpoints(n: number, weights: readonly number[] = WEIGHTS): Endpoint[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `10.0.${i >> 8}.${i & 255}:8080`,
    url: `http://10.0.${i >> 8}.${i & 255}:8080`,
    weight: weights[i % weights.length] as number,
    zone: i % 3 === 0 ? 'zone-a' : 'zone-b',
    priority: i % 10 === 0 ? 1 : 0,
    inflight: 0,
    latencyEwma: 5 + (i % 7),
  }));
}

const keys = Array.from({ length: KEY_COUNT }, (_, i) =>
  `k${(i * 2654435761).toString(16).padStart(15, '0')}`.slice(0, 16),
);

interface Case {
  label: string;
  /** A statement evaluated per pick; `target`, `ctx` and `i` are in scope. */
  body: string;
  setup: (n: number) => { target: unknown; ctx: unknown };
  group: 'ours' | 'baseline';
}

const KEYED = 'target.pick((ctx.key = ctx.keys[i & 65535], ctx))';
const PLAIN = 'target.pick()';

function ours(label: string, make: () => Balancer, keyed = false, weights?: readonly number[]): Case {
  return {
    label,
    group: 'ours',
    body: keyed ? KEYED : PLAIN,
    setup: (n) => {
      const balancer = make();
      balancer.update(makeEndpoints(n, weights));
      return { target: balancer, ctx: { key: '', keys } };
    },
  };
}

const named = (name: BalancerName) => () => createBalancer(name);
const RANDOM_WEIGHTS = Array.from({ length: 1000 }, (_, i) => 1 + ((i * 7919) % 100));

const cases: Case[] = [
  {
    label: 'floor: array index loop',
    group: 'baseline',
    body: '(ctx.next = ctx.next + 1 === ctx.list.length ? 0 : ctx.next + 1, ctx.list[ctx.next])',
    setup: (n) => ({ target: null, ctx: { list: makeEndpoints(n), next: 0 } }),
  },
  ours('round-robin', named('round-robin')),
  {
    label: 'npm roundround',
    group: 'baseline',
    body: 'target()',
    setup: (n) => ({ target: roundround(makeEndpoints(n)), ctx: null }),
  },
  ours('weighted-round-robin (table)', named('weighted-round-robin')),
  ours(
    'weighted-round-robin (weights 1–100; EDF at 1,000)',
    named('weighted-round-robin'),
    false,
    RANDOM_WEIGHTS,
  ),
  {
    label: 'npm wrr-pool',
    group: 'baseline',
    body: 'target.next()',
    setup: (n) => {
      const pool = new WrrPool();
      for (const endpoint of makeEndpoints(n)) pool.add(endpoint, endpoint.weight);
      return { target: pool, ctx: null };
    },
  },
  ours('random (equal weights)', named('random'), false, [1]),
  ours('random (weights 1–4, alias table)', named('random')),
  {
    label: 'npm load-balancers Random',
    group: 'baseline',
    body: 'ctx[target.pick()]',
    setup: (n) => ({ target: new NpmRandom(n), ctx: makeEndpoints(n) }),
  },
  ours('least-request, P2C (equal weights)', named('least-request'), false, [1]),
  ours('least-request, P2C (weights 1–4)', named('least-request')),
  {
    label: 'npm load-balancers P2C',
    group: 'baseline',
    body: 'ctx[target.pick()]',
    setup: (n) => ({ target: new NpmP2c(n), ctx: makeEndpoints(n) }),
  },
  ours('peak-ewma', named('peak-ewma')),
  ours('least-connections (idle: stops at first idle)', named('least-connections')),
  {
    label: 'least-connections (busy: full O(n) scan)',
    group: 'ours',
    body: PLAIN,
    setup: (n) => {
      const balancer = createBalancer('least-connections');
      balancer.update(makeEndpoints(n).map((e, i) => ({ ...e, inflight: 1 + ((i * 7) % 8) })));
      return { target: balancer, ctx: null };
    },
  },
  ours('consistent-hash', named('consistent-hash'), true),
  {
    label: 'npm hashring',
    group: 'baseline',
    body: 'target.get(ctx.keys[i & 65535])',
    setup: (n) => {
      const servers: Record<string, number> = {};
      for (const endpoint of makeEndpoints(n)) servers[endpoint.id] = endpoint.weight;
      return { target: new HashRing(servers), ctx: { keys } };
    },
  },
  ours('maglev', named('maglev'), true),
  ours('ip-hash', named('ip-hash'), true),
  ours('zone-aware (round-robin inside)', () => new ZoneAwareBalancer({ localZone: 'zone-a' })),
  ours('priority (round-robin inside)', () => new PriorityBalancer()),
];

/** Measures one case at every size, in this process. */
function runCase(c: Case): string[] {
  const cells: string[] = [c.group === 'baseline' ? `_${c.label}_` : c.label];
  let heapGrowth = 0;
  for (const n of SIZES) {
    const { target, ctx } = c.setup(n);
    const result = measure(c.body, target, ctx);
    cells.push(ns(result.nsPerOp));
    if (n === SIZES[SIZES.length - 1]) heapGrowth = result.heapGrowth;
  }
  cells.push(bytes(heapGrowth));
  return cells;
}

/**
 * Runs the pick benchmark and returns its table as Markdown. Each case runs in a fresh process, so
 * that the JIT feedback one algorithm leaves in shared code cannot slow the next.
 */
export function runPickBench(): string {
  const rows = cases.map((_, index) => runIsolated(import.meta.url, 'pick', index) as string[]);
  return printTable(
    'Pick: ns per pick (median of 5 × 1,000,000 picks); heap growth over 1,000,000 picks at n = 1,000',
    ['algorithm', 'n = 10', 'n = 100', 'n = 1,000', 'heap growth'],
    rows,
  );
}

registerCases('pick', (index) => runCase(cases[index] as Case));
