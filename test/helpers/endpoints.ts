import type { Endpoint } from '../../src/core/endpoint.js';

/** A mutable endpoint for tests: load fields are set by the test. */
export interface TestEndpoint extends Endpoint {
  weight: number;
  inflight: number;
  latencyEwma?: number;
  zone?: string;
  priority?: number;
}

/** An endpoint with the given id and fields. */
export function endpoint(id: string, fields: Partial<Omit<TestEndpoint, 'id'>> = {}): TestEndpoint {
  return { id, url: `http://127.0.0.1/${id}`, weight: 1, inflight: 0, ...fields };
}

/** `n` endpoints `e0 … e(n-1)`, with weights from `weights` (cycled) when given. */
export function endpoints(n: number, weights?: readonly number[]): TestEndpoint[] {
  return Array.from({ length: n }, (_, i) =>
    endpoint(`e${i}`, weights === undefined ? {} : { weight: weights[i % weights.length] as number }),
  );
}

/** Picks `count` times and counts picks per id. */
export function tally(pick: () => Endpoint | undefined, count: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i < count; i++) {
    const chosen = pick();
    if (chosen === undefined) throw new Error('pick() returned undefined');
    counts.set(chosen.id, (counts.get(chosen.id) ?? 0) + 1);
  }
  return counts;
}
