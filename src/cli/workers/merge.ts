/**
 * One view of several workers' statistics, for the primary's admin listener. Counts add up
 * (requests, errors, in flight, rates, connections); an endpoint's state is the worst any worker
 * sees (ejected, draining or cooling down in one is so in the view; eligible and healthy only when
 * so in every one); latency percentiles are the slowest worker's (percentiles cannot be added, and
 * the slowest is what an operator looks for); settings (weight, zone, priority) are the first
 * worker's, since every admin change goes to all of them.
 */
import type { CircuitState } from '../../breaker/CircuitBreaker.js';
import type { EndpointStats } from '../../cluster/ManagedEndpoint.js';
import type { ClusterStats } from '../../cluster/options.js';
import type { RateLimiterStats } from '../../limit/RateLimiter.js';
import type { LatencySummary } from '../../observe/LatencyWindow.js';
import type { PoolStats } from '../../pool/Pool.js';

/** What a worker reports about itself. */
export interface WorkerSnapshot {
  readonly clusters: Record<string, ClusterStats>;
  readonly limiters: Record<string, RateLimiterStats>;
  readonly proxy: {
    readonly inflight: number;
    readonly tunnels: number;
    readonly mcpSessions: Record<string, Record<string, number>>;
  };
}

const CIRCUIT_RANK: Record<CircuitState, number> = { closed: 0, 'half-open': 1, open: 2 };

function sum<T>(items: readonly T[], pick: (item: T) => number): number {
  let total = 0;
  for (const item of items) total += pick(item);
  return total;
}

function max<T>(items: readonly T[], pick: (item: T) => number): number {
  let most = 0;
  for (const item of items) most = Math.max(most, pick(item));
  return most;
}

function latency(items: readonly LatencySummary[]): LatencySummary {
  return {
    p50: max(items, (l) => l.p50),
    p95: max(items, (l) => l.p95),
    p99: max(items, (l) => l.p99),
    rps: sum(items, (l) => l.rps),
    count: sum(items, (l) => l.count),
  };
}

function pool(items: readonly PoolStats[]): PoolStats {
  const requests = sum(items, (p) => p.requests);
  const opened = sum(items, (p) => p.connectionsOpened);
  return {
    connected: sum(items, (p) => p.connected),
    free: sum(items, (p) => p.free),
    pending: sum(items, (p) => p.pending),
    running: sum(items, (p) => p.running),
    connectionsOpened: opened,
    requests,
    rejected: sum(items, (p) => p.rejected),
    resent: sum(items, (p) => p.resent),
    reuseRatio: requests === 0 ? 0 : Math.max(0, (requests - opened) / requests),
    utilisation: items.length === 0 ? 0 : sum(items, (p) => p.utilisation) / items.length,
  };
}

function endpoint(items: readonly EndpointStats[]): EndpointStats {
  const first = items[0] as EndpointStats;
  let circuit: CircuitState = 'closed';
  for (const item of items) if (CIRCUIT_RANK[item.circuit] > CIRCUIT_RANK[circuit]) circuit = item.circuit;
  return {
    ...first,
    eligible: items.every((e) => e.eligible),
    healthy: items.every((e) => e.healthy),
    ejected: items.some((e) => e.ejected),
    draining: items.some((e) => e.draining),
    coolingDown: items.some((e) => e.coolingDown),
    circuit,
    inflight: sum(items, (e) => e.inflight),
    tunnels: sum(items, (e) => e.tunnels),
    requests: sum(items, (e) => e.requests),
    errors: sum(items, (e) => e.errors),
    latencyEwma: max(items, (e) => e.latencyEwma),
    latency: latency(items.map((e) => e.latency)),
    pool: pool(items.map((e) => e.pool)),
  };
}

/** One cluster's statistics across workers (at least one). */
export function mergeClusterStats(items: readonly ClusterStats[]): ClusterStats {
  const byId = new Map<string, EndpointStats[]>();
  for (const stats of items)
    for (const e of stats.endpoints) {
      const list = byId.get(e.id);
      if (list === undefined) byId.set(e.id, [e]);
      else list.push(e);
    }
  const endpoints = [...byId.values()].map(endpoint);
  return {
    name: (items[0] as ClusterStats).name,
    endpoints,
    eligible: endpoints.filter((e) => e.eligible).length,
    panic: items.some((s) => s.panic),
    requests: sum(items, (s) => s.requests),
    errors: sum(items, (s) => s.errors),
    inflight: sum(items, (s) => s.inflight),
    latency: latency(items.map((s) => s.latency)),
    retries: sum(items, (s) => s.retries),
    requeues: sum(items, (s) => s.requeues),
    retryBudgetExhausted: sum(items, (s) => s.retryBudgetExhausted),
  };
}

/** Rate limiters' counters across workers. */
export function mergeLimiterStats(items: readonly RateLimiterStats[]): RateLimiterStats {
  return {
    allowed: sum(items, (s) => s.allowed),
    limited: sum(items, (s) => s.limited),
    queued: sum(items, (s) => s.queued),
    storeErrors: sum(items, (s) => s.storeErrors),
  };
}

/** MCP sessions per cluster and endpoint, added up. */
export function mergeSessions(
  items: readonly Record<string, Record<string, number>>[],
): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (const sessions of items)
    for (const [cluster, endpoints] of Object.entries(sessions)) {
      const into = out[cluster] ?? {};
      out[cluster] = into;
      for (const [id, count] of Object.entries(endpoints)) into[id] = (into[id] ?? 0) + count;
    }
  return out;
}
