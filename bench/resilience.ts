/**
 * ns per operation of the resilience primitives beside the npm packages people use for the same
 * job, each case in a fresh process: `RateLimiter` (memory store) against rate-limiter-flexible's
 * `RateLimiterMemory`, and `CircuitBreaker.execute()` against cockatiel's and opossum's breakers.
 * Every limiter case rotates over 1,000 keys with a limit high enough that all requests pass;
 * every breaker case wraps a function that resolves at once.
 */
import { createRequire } from 'node:module';
import { CircuitBreaker, RateLimiter } from '../src/index.js';
import { bytes, heapGrowthOf, ns, printTable, registerCases, runIsolated } from './harness.js';

const require = createRequire(import.meta.url);
const { RateLimiterMemory } = require('rate-limiter-flexible') as {
  RateLimiterMemory: new (options: {
    points: number;
    duration: number;
  }) => { consume(key: string): Promise<unknown> };
};
const cockatiel = require('cockatiel') as {
  circuitBreaker(
    policy: unknown,
    options: { halfOpenAfter: number; breaker: unknown },
  ): {
    execute<T>(fn: () => Promise<T>): Promise<T>;
  };
  handleAll: unknown;
  ConsecutiveBreaker: new (threshold: number) => unknown;
};
const Opossum = require('opossum') as new (
  fn: () => Promise<number>,
  options: Record<string, unknown>,
) => { fire(): Promise<number>; shutdown(): void };

const KEYS = Array.from({ length: 1000 }, (_, i) => `client-${i}`);
const OPS = 300_000;
const ROUNDS = 5;

interface Case {
  label: string;
  group: 'ours' | 'baseline';
  /** Builds the operation; `i` is the iteration. */
  setup: () => { op: (i: number) => unknown; done?: () => void };
}

const resolved = () => Promise.resolve(1);

const cases: Case[] = [
  {
    label: 'RateLimiter.consumeSync (token bucket)',
    group: 'ours',
    setup: () => {
      const limiter = new RateLimiter({ limit: 1e12, windowMs: '1s' });
      return { op: (i) => limiter.consumeSync(KEYS[i % 1000] as string) };
    },
  },
  {
    label: 'RateLimiter.consume (token bucket, await)',
    group: 'ours',
    setup: () => {
      const limiter = new RateLimiter({ limit: 1e12, windowMs: '1s' });
      return { op: (i) => limiter.consume(KEYS[i % 1000] as string) };
    },
  },
  {
    label: 'RateLimiter.consume (sliding window, await)',
    group: 'ours',
    setup: () => {
      const limiter = new RateLimiter({ algorithm: 'sliding-window', limit: 1e12, windowMs: '1s' });
      return { op: (i) => limiter.consume(KEYS[i % 1000] as string) };
    },
  },
  {
    label: 'rate-limiter-flexible RateLimiterMemory.consume (await)',
    group: 'baseline',
    setup: () => {
      const limiter = new RateLimiterMemory({ points: 1e12, duration: 1 });
      return { op: (i) => limiter.consume(KEYS[i % 1000] as string) };
    },
  },
  {
    label: 'CircuitBreaker tryAcquire + onSuccess',
    group: 'ours',
    setup: () => {
      const breaker = new CircuitBreaker();
      return {
        op: () => {
          if (breaker.tryAcquire()) breaker.onSuccess();
          return 1;
        },
      };
    },
  },
  {
    label: 'CircuitBreaker.execute (await)',
    group: 'ours',
    setup: () => {
      const breaker = new CircuitBreaker();
      return { op: () => breaker.execute(resolved) };
    },
  },
  {
    label: 'cockatiel circuitBreaker.execute (await)',
    group: 'baseline',
    setup: () => {
      const policy = cockatiel.circuitBreaker(cockatiel.handleAll, {
        halfOpenAfter: 10_000,
        breaker: new cockatiel.ConsecutiveBreaker(5),
      });
      return { op: () => policy.execute(resolved) };
    },
  },
  {
    label: 'opossum CircuitBreaker.fire (await)',
    group: 'baseline',
    setup: () => {
      const breaker = new Opossum(resolved, { timeout: false, resetTimeout: 10_000 });
      return { op: () => breaker.fire(), done: () => breaker.shutdown() };
    },
  },
];

async function loop(op: (i: number) => unknown, ops: number): Promise<void> {
  for (let i = 0; i < ops; i++) {
    const result = op(i);
    if (result instanceof Promise) await result;
  }
}

async function runCase(c: Case): Promise<string[]> {
  const { op, done } = c.setup();
  await loop(op, 50_000); // warm-up
  const times: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const start = process.hrtime.bigint();
    await loop(op, OPS);
    times.push(Number(process.hrtime.bigint() - start) / OPS);
  }
  times.sort((a, b) => a - b);
  // Heap growth of a synchronous run only; awaited loops keep promises until the microtask queue drains.
  let growth = 'n/a (async)';
  const probe = op(0);
  if (!(probe instanceof Promise)) {
    growth = bytes(
      heapGrowthOf(() => {
        for (let i = 0; i < 1_000_000; i++) op(i);
      }),
    );
  }
  done?.();
  return [
    c.group === 'baseline' ? `_${c.label}_` : c.label,
    ns(times[Math.floor(ROUNDS / 2)] as number),
    growth,
  ];
}

/** Runs the resilience benchmark and returns its table. */
export function runResilienceBench(): string {
  const rows = cases.map((_, index) => runIsolated(import.meta.url, 'resilience', index) as string[]);
  return printTable(
    `Resilience: ns per operation (median of ${ROUNDS} × ${OPS.toLocaleString('en')}); heap growth over 1,000,000 synchronous operations`,
    ['operation', 'ns/op', 'heap growth'],
    rows,
  );
}

registerCases('resilience', (index) => runCase(cases[index] as Case));
