/**
 * How many keys move when one of n endpoints leaves or joins, for the hash balancers, as a multiple
 * of the ideal 1/n (1/(n+1) on a join), and how evenly keys spread (lowest and highest endpoint
 * share as a multiple of the fair share). 100,000 keys; deterministic, so the figures repeat.
 */
import { type Balancer, createBalancer, type Endpoint } from '../src/index.js';
import { printTable } from './harness.js';

const KEYS = Array.from({ length: 100_000 }, (_, i) => `user-${i}-${((i * 2654435761) >>> 0).toString(36)}`);

function endpoints(n: number): Endpoint[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `backend-${i}`,
    url: `http://10.0.0.${i}:80`,
    weight: 1,
    inflight: 0,
  }));
}

function owners(balancer: Balancer, n: number, without?: string): string[] {
  balancer.update(endpoints(n).filter((e) => e.id !== without));
  return KEYS.map((key) => balancer.pick({ key })?.id ?? '');
}

function movedShare(before: string[], after: string[]): number {
  let moved = 0;
  for (let i = 0; i < before.length; i++) if (before[i] !== after[i]) moved++;
  return moved / before.length;
}

/** Runs the disruption measurement and returns its table. */
export function runDisruptionBench(): string {
  const rows: string[][] = [];
  for (const name of ['consistent-hash', 'maglev'] as const) {
    for (const n of [5, 10, 50, 100]) {
      const base = owners(createBalancer(name), n);
      const removed = owners(createBalancer(name), n, 'backend-3');
      const added = owners(createBalancer(name), n + 1);
      const counts = new Map<string, number>();
      for (const id of base) counts.set(id, (counts.get(id) ?? 0) + 1);
      const shares = [...counts.values()].map((c) => (c / KEYS.length) * n);
      rows.push([
        name,
        String(n),
        `${(movedShare(base, removed) * n).toFixed(2)} × 1/n`,
        `${(movedShare(base, added) * (n + 1)).toFixed(2)} × 1/(n+1)`,
        `${Math.min(...shares).toFixed(2)} – ${Math.max(...shares).toFixed(2)}`,
      ]);
    }
  }
  return printTable(
    'Disruption: keys moved when one of n endpoints leaves or joins (100,000 keys)',
    ['algorithm', 'n', 'one leaves', 'one joins', 'spread (min – max share)'],
    rows,
  );
}
