/**
 * The metrics of clusters, rate limiters and a proxy, as Prometheus text (format 0.0.4): counters of
 * requests, errors, retries, requeues and refusals; gauges of in-flight requests and tunnels,
 * endpoint state, circuit state, pool use and latency percentiles over the recent window. Read on
 * demand from their `stats()`, so collecting costs nothing between scrapes; the text format itself is
 * observe/exposition.ts.
 */
import type { Cluster } from '../cluster/Cluster.js';
import type { DiscoveryStats } from '../cluster/DiscoveryRunner.js';
import type { RateLimiter } from '../limit/RateLimiter.js';
import { Exposition, type Labels, type MetricFamily } from '../observe/exposition.js';
import type { TcpProxy } from '../tcp/createTcpProxy.js';

/** What {@link renderPrometheus} reports on. */
export interface MetricsSources {
  clusters: Readonly<Record<string, Pick<Cluster, 'stats'>>>;
  limiters?: Readonly<Record<string, Pick<RateLimiter, 'stats'>>>;
  proxy?: ProxyMetricsSource;
  /** TCP proxies to report, by listener name. */
  tcpProxies?: Readonly<Record<string, Pick<TcpProxy, 'stats'>>>;
}

/** What metrics read of a proxy: its requests in flight, and its MCP sessions per cluster and endpoint. */
export interface ProxyMetricsSource {
  readonly inflight: number;
  /** WebSocket tunnels open now. */
  readonly tunnels?: number;
  /** The clusters it sends to, by name: reported when `clusters` is not given. */
  readonly clusters?: Readonly<Record<string, Cluster>>;
  /** Present with MCP affinity. */
  mcpSessions?(): Record<string, Record<string, number>>;
}

/** Where metricFamilies() puts each family it reads. */
type FamilyOut = {
  family(
    name: string,
    type: 'counter' | 'gauge',
    help: string,
    samples: readonly (readonly [Labels, number])[],
  ): void;
};

/** Renders every metric as Prometheus text. */
export function renderPrometheus(sources: MetricsSources): string {
  const text = new Exposition();
  for (const { name, type, help, samples } of metricFamilies(sources)) text.family(name, type, help, samples);
  return text.toString();
}

/** Every metric family of `sources`, read from their stats now (the text endpoint and prom-client share it). */
export function metricFamilies(sources: MetricsSources): MetricFamily[] {
  const families: MetricFamily[] = [];
  const out: FamilyOut = {
    family: (name, type, help, samples) => {
      families.push({ name, type, help, samples });
    },
  };
  const clusters = Object.entries(sources.clusters).map(
    ([name, cluster]) => [name, cluster.stats()] as const,
  );
  const perEndpoint = (pick: (e: ReturnType<Cluster['stats']>['endpoints'][number]) => number) =>
    clusters.flatMap(([cluster, stats]) =>
      stats.endpoints.map((e): [Labels, number] => [{ cluster, endpoint: e.id }, pick(e)]),
    );
  const perCluster = (pick: (s: ReturnType<Cluster['stats']>) => number) =>
    clusters.map(([cluster, stats]): [Labels, number] => [{ cluster }, pick(stats)]);

  out.family(
    'mcgravity_requests_total',
    'counter',
    'Requests sent to the endpoint.',
    perEndpoint((e) => e.requests),
  );
  out.family(
    'mcgravity_errors_total',
    'counter',
    'Requests to the endpoint that failed or answered 5xx.',
    perEndpoint((e) => e.errors),
  );
  out.family(
    'mcgravity_inflight_requests',
    'gauge',
    'Requests in flight to the endpoint.',
    perEndpoint((e) => e.inflight),
  );
  out.family(
    'mcgravity_endpoint_tunnels',
    'gauge',
    'WebSocket (upgraded) tunnels open to the endpoint; each counts in flight too.',
    perEndpoint((e) => e.tunnels),
  );
  out.family(
    'mcgravity_request_rate',
    'gauge',
    'Requests per second to the endpoint over the recent window.',
    perEndpoint((e) => e.latency.rps),
  );
  out.family(
    'mcgravity_latency_seconds',
    'gauge',
    'Time to first byte from the endpoint over the recent window, by quantile.',
    clusters.flatMap(([cluster, stats]) =>
      stats.endpoints.flatMap((e): [Labels, number][] => [
        [{ cluster, endpoint: e.id, quantile: '0.5' }, e.latency.p50 / 1000],
        [{ cluster, endpoint: e.id, quantile: '0.95' }, e.latency.p95 / 1000],
        [{ cluster, endpoint: e.id, quantile: '0.99' }, e.latency.p99 / 1000],
      ]),
    ),
  );
  out.family(
    'mcgravity_endpoint_eligible',
    'gauge',
    '1 when the balancer may pick the endpoint.',
    perEndpoint((e) => Number(e.eligible)),
  );
  out.family(
    'mcgravity_endpoint_healthy',
    'gauge',
    '1 when active health checks pass (or are off).',
    perEndpoint((e) => Number(e.healthy)),
  );
  out.family(
    'mcgravity_endpoint_ejected',
    'gauge',
    '1 while outlier detection has ejected the endpoint.',
    perEndpoint((e) => Number(e.ejected)),
  );
  out.family(
    'mcgravity_endpoint_draining',
    'gauge',
    '1 while the endpoint drains.',
    perEndpoint((e) => Number(e.draining)),
  );
  out.family(
    'mcgravity_endpoint_weight',
    'gauge',
    'Weight the balancer uses now (lower during slow start).',
    perEndpoint((e) => e.effectiveWeight),
  );
  out.family(
    'mcgravity_circuit_state',
    'gauge',
    'Circuit breaker state of the endpoint: 1 for the current state.',
    clusters.flatMap(([cluster, stats]) =>
      stats.endpoints.flatMap((e) =>
        (['closed', 'open', 'half-open'] as const).map((state): [Labels, number] => [
          { cluster, endpoint: e.id, state },
          Number(e.circuit === state),
        ]),
      ),
    ),
  );
  out.family(
    'mcgravity_pool_connections',
    'gauge',
    'Open connections to the endpoint.',
    perEndpoint((e) => e.pool.connected),
  );
  out.family(
    'mcgravity_pool_pending_requests',
    'gauge',
    'Requests waiting for a connection.',
    perEndpoint((e) => e.pool.pending),
  );
  out.family(
    'mcgravity_pool_utilisation_ratio',
    'gauge',
    'Connections in use out of the maximum.',
    perEndpoint((e) => e.pool.utilisation),
  );
  out.family(
    'mcgravity_pool_connections_opened_total',
    'counter',
    'Connections opened to the endpoint.',
    perEndpoint((e) => e.pool.connectionsOpened),
  );
  out.family(
    'mcgravity_pool_rejected_total',
    'counter',
    'Requests refused because the pending queue was full.',
    perEndpoint((e) => e.pool.rejected),
  );
  out.family(
    'mcgravity_pool_resent_total',
    'counter',
    'HTTP/2 requests sent again on another connection because the backend refused their stream (GOAWAY).',
    perEndpoint((e) => e.pool.resent),
  );
  out.family(
    'mcgravity_cluster_eligible_endpoints',
    'gauge',
    'Endpoints the balancer may pick.',
    perCluster((s) => s.eligible),
  );
  out.family(
    'mcgravity_cluster_panic',
    'gauge',
    '1 while panic mode balances across every endpoint.',
    perCluster((s) => Number(s.panic)),
  );
  const discovered = clusters.flatMap(([cluster, stats]) =>
    stats.discovery === undefined ? [] : [[cluster, stats.discovery] as const],
  );
  const perDiscovery = (pick: (d: DiscoveryStats) => number) =>
    discovered.map(([cluster, d]): [Labels, number] => [{ cluster, source: d.source }, pick(d)]);
  if (discovered.length > 0) {
    out.family(
      'mcgravity_discovery_updates_total',
      'counter',
      "Answers from the cluster's discovery source that changed its membership.",
      perDiscovery((d) => d.updates),
    );
    out.family(
      'mcgravity_discovery_errors_total',
      'counter',
      'Discovery answers that failed or were refused (the last good set was kept).',
      perDiscovery((d) => d.errors),
    );
    out.family(
      'mcgravity_discovery_stale',
      'gauge',
      "1 while the discovery source's last answer failed or was refused and the cluster keeps its last good set.",
      perDiscovery((d) => Number(d.stale)),
    );
  }
  out.family(
    'mcgravity_retries_total',
    'counter',
    'Retries sent.',
    perCluster((s) => s.retries),
  );
  out.family(
    'mcgravity_requeues_total',
    'counter',
    'Attempts sent again elsewhere because the one before never reached its backend (outside the retry budget).',
    perCluster((s) => s.requeues),
  );
  out.family(
    'mcgravity_retry_budget_exhausted_total',
    'counter',
    'Retries not sent because the retry budget was spent.',
    perCluster((s) => s.retryBudgetExhausted),
  );
  const limiters = Object.entries(sources.limiters ?? {}).map(
    ([name, limiter]) => [name, limiter.stats()] as const,
  );
  out.family(
    'mcgravity_ratelimit_requests_total',
    'counter',
    'Rate-limit decisions, by outcome.',
    limiters.flatMap(([limiter, stats]): [Labels, number][] => [
      [{ limiter, outcome: 'allowed' }, stats.allowed],
      [{ limiter, outcome: 'limited' }, stats.limited],
    ]),
  );
  out.family(
    'mcgravity_ratelimit_store_errors_total',
    'counter',
    'Rate-limit store failures.',
    limiters.map(([limiter, stats]): [Labels, number] => [{ limiter }, stats.storeErrors]),
  );
  tcpFamilies(out, sources.tcpProxies ?? {});
  if (sources.proxy !== undefined) {
    out.family('mcgravity_proxy_inflight_requests', 'gauge', 'Requests the proxy is serving.', [
      [{}, sources.proxy.inflight],
    ]);
    if (sources.proxy.tunnels !== undefined) {
      out.family('mcgravity_proxy_tunnels', 'gauge', 'WebSocket tunnels the proxy holds open.', [
        [{}, sources.proxy.tunnels],
      ]);
    }
    const sessions = Object.entries(sources.proxy.mcpSessions?.() ?? {}).flatMap(([cluster, byEndpoint]) =>
      Object.entries(byEndpoint).map(([endpoint, count]): [Labels, number] => [{ cluster, endpoint }, count]),
    );
    if (sessions.length > 0) {
      out.family(
        'mcgravity_mcp_sessions',
        'gauge',
        'MCP sessions the proxy routed recently (within their idle time) and not ended.',
        sessions,
      );
    }
  }
  return families;
}

function tcpFamilies(out: FamilyOut, proxies: Readonly<Record<string, Pick<TcpProxy, 'stats'>>>): void {
  const all = Object.entries(proxies).map(([listener, proxy]) => [listener, proxy.stats()] as const);
  if (all.length === 0) return;
  const each = (pick: (stats: ReturnType<TcpProxy['stats']>) => number) =>
    all.map(([listener, stats]): [Labels, number] => [{ listener }, pick(stats)]);
  out.family(
    'mcgravity_tcp_connections_open',
    'gauge',
    'Client connections the TCP proxy holds open.',
    each((s) => s.open),
  );
  out.family(
    'mcgravity_tcp_connections_total',
    'counter',
    'Client connections accepted.',
    each((s) => s.accepted),
  );
  out.family(
    'mcgravity_tcp_connections_closed_total',
    'counter',
    'Client connections refused or closed by the proxy, by reason.',
    all.flatMap(([listener, stats]): [Labels, number][] => [
      [{ listener, reason: 'limit' }, stats.refused],
      [{ listener, reason: 'no_upstream' }, stats.failed],
      [{ listener, reason: 'idle' }, stats.idleClosed],
    ]),
  );
  out.family(
    'mcgravity_tcp_received_bytes_total',
    'counter',
    'Bytes from clients to backends.',
    each((s) => s.bytesReceived),
  );
  out.family(
    'mcgravity_tcp_sent_bytes_total',
    'counter',
    'Bytes from backends to clients.',
    each((s) => s.bytesSent),
  );
}
