/**
 * `mcgravity/prometheus`: mcgravity's metrics in a `prom-client` registry (an optional peer
 * dependency), for a service that already serves one. The same families as the admin API's
 * `/metrics` (read from the clusters', limiters' and proxy's stats at each scrape), plus latency
 * histograms that prom-client aggregates: `mcgravity_attempt_duration_seconds` (each try, by cluster,
 * endpoint and outcome) and `mcgravity_proxy_request_duration_seconds` (each proxied request, by
 * status class), fed by mcgravity's diagnostics channels.
 *
 * ```ts
 * import { register } from 'prom-client';
 * import { registerMcgravityMetrics } from 'mcgravity/prometheus';
 * const unregister = registerMcgravityMetrics({ registry: register, proxy });
 * ```
 */
import diagnostics from 'node:diagnostics_channel';
import client, { type Metric, type Registry } from 'prom-client';
import { type MetricsSources, metricFamilies, type ProxyMetricsSource } from '../admin/metrics.js';
import type { Cluster } from '../cluster/Cluster.js';
import type { RateLimiter } from '../limit/RateLimiter.js';
import type { AttemptEndMessage, ProxyRequestEndMessage } from '../observe/diagnostics.js';
import type { MetricFamily } from '../observe/exposition.js';
import type { TcpProxy } from '../tcp/createTcpProxy.js';

/** Options of {@link registerMcgravityMetrics}. */
export interface PromClientOptions {
  /** The registry to register into. @default prom-client's global `register` */
  registry?: Registry;
  /** Clusters to report, by name. @default the proxy's clusters */
  clusters?: Readonly<Record<string, Cluster>>;
  /** A proxy: its in-flight requests, tunnels, MCP sessions and clusters. */
  proxy?: ProxyMetricsSource;
  /** Rate limiters to report, by name. */
  limiters?: Readonly<Record<string, RateLimiter>>;
  /** TCP proxies to report, by listener name. */
  tcpProxies?: Readonly<Record<string, Pick<TcpProxy, 'stats'>>>;
  /** Histogram buckets in seconds. @default 1 ms to 10 s, in 13 steps */
  buckets?: readonly number[];
}

/** Default histogram buckets, in seconds: proxied calls on a LAN take 1 ms; a slow answer, seconds. */
export const DEFAULT_BUCKETS: readonly number[] = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/** Families computed once per scrape: every family's `get()` of one scrape reads the same stats. */
const SCRAPE_CACHE_MS = 100;

/**
 * Registers mcgravity's metrics into a prom-client registry. Returns a function that removes them
 * and stops feeding the histograms.
 */
export function registerMcgravityMetrics(options: PromClientOptions = {}): () => void {
  const registry = options.registry ?? client.register;
  const clusters = { ...(options.proxy?.clusters ?? {}), ...(options.clusters ?? {}) };
  const sources: MetricsSources = {
    clusters,
    ...(options.limiters === undefined ? {} : { limiters: options.limiters }),
    ...(options.proxy === undefined ? {} : { proxy: options.proxy }),
    ...(options.tcpProxies === undefined ? {} : { tcpProxies: options.tcpProxies }),
  };
  let cached: { at: number; byName: Map<string, MetricFamily> } | undefined;
  const familiesNow = (): Map<string, MetricFamily> => {
    const now = performance.now();
    if (cached === undefined || now - cached.at > SCRAPE_CACHE_MS) {
      cached = { at: now, byName: new Map(metricFamilies(sources).map((family) => [family.name, family])) };
    }
    return cached.byName;
  };
  const names: string[] = [];
  for (const family of metricFamilies(sources)) {
    // A metric prom-client scrapes like its own: name, help, type, and values read at scrape time.
    const metric = {
      name: family.name,
      help: family.help,
      type: family.type,
      aggregator: 'sum',
      collect: () => undefined,
      reset: () => undefined,
      get: async () => {
        const current = familiesNow().get(family.name);
        return {
          name: family.name,
          help: family.help,
          type: family.type,
          aggregator: 'sum',
          values: (current?.samples ?? []).map(([labels, value]) => ({ labels: { ...labels }, value })),
        };
      },
    };
    registry.registerMetric(metric as unknown as Metric);
    names.push(family.name);
  }
  const buckets = [...(options.buckets ?? DEFAULT_BUCKETS)];
  const attempts = new client.Histogram({
    name: 'mcgravity_attempt_duration_seconds',
    help: 'Time from a try to its answer head or its failure, by cluster, endpoint and outcome.',
    labelNames: ['cluster', 'endpoint', 'outcome'] as const,
    buckets,
    registers: [registry],
  });
  const requests = new client.Histogram({
    name: 'mcgravity_proxy_request_duration_seconds',
    help: 'Time the proxy took to answer a request, to its last byte, by status class.',
    labelNames: ['status_class'] as const,
    buckets,
    registers: [registry],
  });
  names.push('mcgravity_attempt_duration_seconds', 'mcgravity_proxy_request_duration_seconds');
  const onAttempt = (message: unknown) => {
    const { cluster, endpoint, statusCode, durationMs } = message as AttemptEndMessage;
    const outcome = statusCode === undefined ? 'error' : `${Math.floor(statusCode / 100)}xx`;
    attempts.observe({ cluster, endpoint, outcome }, durationMs / 1000);
  };
  const onRequest = (message: unknown) => {
    const { statusCode, durationMs } = message as ProxyRequestEndMessage;
    requests.observe({ status_class: `${Math.floor(statusCode / 100)}xx` }, durationMs / 1000);
  };
  diagnostics.subscribe('mcgravity:attempt:end', onAttempt);
  if (options.proxy !== undefined) diagnostics.subscribe('mcgravity:proxy:request:end', onRequest);
  return () => {
    diagnostics.unsubscribe('mcgravity:attempt:end', onAttempt);
    if (options.proxy !== undefined) diagnostics.unsubscribe('mcgravity:proxy:request:end', onRequest);
    for (const name of names) registry.removeSingleMetric(name);
  };
}
