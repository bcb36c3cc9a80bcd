/**
 * A checked configuration turned into the library's options: one `ClusterOptions` per cluster and
 * one `ProxyOptions` per listener. Pure functions of the configuration (and the clusters already
 * made), so that `--check` and a reload build exactly what a start builds.
 */
import { cpus } from 'node:os';
import type { BalancerName } from '../balancer/Balancer.js';
import { ZoneAwareBalancer } from '../balancer/ZoneAwareBalancer.js';
import type { Cluster, ClusterOptions } from '../cluster/Cluster.js';
import type { Duration } from '../core/duration.js';
import type { BackendConfig } from '../core/endpoint.js';
import type { Logger } from '../core/log.js';
import type { TextMatch } from '../core/match.js';
import type { Discovery } from '../discovery/Discovery.js';
import { type DnsDiscoveryOptions, dnsDiscovery } from '../discovery/dnsDiscovery.js';
import { fileDiscovery } from '../discovery/fileDiscovery.js';
import { grpcCheck } from '../health/grpcCheck.js';
import { tcpCheck } from '../health/HealthMonitor.js';
import type { ProxyOptions, ProxyRoute } from '../proxy/createProxy.js';
import type { SplitTarget } from '../proxy/routes.js';
import { backendUrl, fileFrom, sizeBytes } from './config/addresses.js';
import type {
  ClusterConfig,
  DiscoveryConfig,
  ListenerConfig,
  ProxyConfig,
  SessionAffinityConfig,
} from './config/schema.js';
import type { ClusterRateLimits } from './rateLimits.js';

const BALANCERS: Record<Exclude<ClusterConfig['load_balancing'], 'geographic'>, BalancerName> = {
  round_robin: 'round-robin',
  weighted_round_robin: 'weighted-round-robin',
  random: 'random',
  least_connections: 'least-connections',
  least_request: 'least-request',
  peak_ewma: 'peak-ewma',
  consistent_hash: 'consistent-hash',
  maglev: 'maglev',
  ip_hash: 'ip-hash',
};

/**
 * How a cluster's pool speaks to its backends: gRPC is HTTP/2, over TLS for `https://` backends
 * and in cleartext otherwise; a TCP cluster's pool is never used.
 */
function poolProtocol(cluster: ClusterConfig): 'http1' | 'h2' | 'h2c' {
  if (cluster.protocol === 'h2' || cluster.protocol === 'h2c') return cluster.protocol;
  if (cluster.protocol !== 'grpc') return 'http1';
  const tls = cluster.backends.some((backend) => backend.address.startsWith('https://'));
  const discovered =
    cluster.discovery !== undefined && 'dns' in cluster.discovery && cluster.discovery.dns.scheme === 'https';
  return tls || discovered ? 'h2' : 'h2c';
}

/** A cluster's discovery source; a file's path is relative to the configuration's. */
function discoveryOf(discovery: DiscoveryConfig, file: string, tcp: boolean): Discovery {
  if ('file' in discovery) {
    return fileDiscovery({
      path: fileFrom(file, discovery.file.path),
      intervalMs: discovery.file.interval as Duration,
    });
  }
  const dns = discovery.dns;
  const options: DnsDiscoveryOptions = {
    name: dns.name,
    type: dns.type,
    scheme: tcp ? 'tcp' : dns.scheme,
    targetType: dns.target_type,
    minTtlMs: dns.min_ttl as Duration,
    maxTtlMs: dns.max_ttl as Duration,
    timeoutMs: dns.timeout as Duration,
  };
  if (dns.port !== undefined) options.port = dns.port;
  if (dns.servers !== undefined) options.servers = dns.servers;
  return dnsDiscovery(options);
}

/** Algorithms that need a key per request: the client's address unless an affinity gives one. */
const KEYED = new Set(['consistent_hash', 'maglev', 'ip_hash']);

/** `"/beta/i"` is a regular expression; anything else is matched as written. */
export function textMatch(value: string): TextMatch {
  const regex = /^\/(.+)\/([dgimsuvy]*)$/.exec(value);
  return regex === null ? value : new RegExp(regex[1] as string, regex[2]);
}

/** Header conditions of the file, with `/regex/` values compiled. */
export function headerMatches(
  headers: Readonly<Record<string, string>> | undefined,
): Record<string, TextMatch> | undefined {
  if (headers === undefined) return undefined;
  return Object.fromEntries(Object.entries(headers).map(([name, value]) => [name, textMatch(value)]));
}

/** The library options of one configured cluster; `file` is the configuration's path. */
export function clusterOptions(
  name: string,
  cluster: ClusterConfig,
  config: ProxyConfig,
  logger: Logger | undefined,
  file: string,
): ClusterOptions {
  const pool = cluster.connection_pool;
  const tcp = cluster.protocol === 'tcp';
  const backends = cluster.backends.map((backend): BackendConfig => {
    const out: BackendConfig = {
      url: backendUrl(backend.address, tcp),
      weight: backend.weight,
      priority: backend.priority,
    };
    if (backend.id !== undefined) out.id = backend.id;
    if (backend.zone !== undefined) out.zone = backend.zone;
    if (backend.max_connections !== undefined) out.maxConnections = backend.max_connections;
    return out;
  });
  const options: ClusterOptions = {
    name,
    backends,
    allowEmpty: cluster.allow_empty,
    balancer:
      cluster.load_balancing === 'geographic'
        ? new ZoneAwareBalancer({ localZone: config.global.zone as string, inner: 'least-request' })
        : BALANCERS[cluster.load_balancing],
    pool: {
      connections: pool.max_connections,
      connectTimeoutMs: pool.connect_timeout as Duration,
      keepAliveTimeoutMs: pool.keepalive_timeout as Duration,
      pipelining: pool.pipelining,
      protocol: poolProtocol(cluster),
    },
    slowStartMs: cluster.slow_start as Duration,
    panicThreshold: cluster.panic_threshold,
  };
  if (logger !== undefined) options.logger = logger;
  if (cluster.discovery !== undefined) options.discovery = discoveryOf(cluster.discovery, file, tcp);
  const health = cluster.health_check;
  if (health === undefined || health === false || !health.enabled) options.health = false;
  else if (health.type !== 'http') {
    options.health = {
      check: health.type === 'tcp' ? tcpCheck() : grpcCheck({ service: health.grpc_service }),
      intervalMs: health.interval as Duration,
      timeoutMs: health.timeout as Duration,
      healthyThreshold: health.healthy_threshold,
      unhealthyThreshold: health.unhealthy_threshold,
    };
  } else {
    options.health = {
      path: health.path,
      method: health.method,
      intervalMs: health.interval as Duration,
      timeoutMs: health.timeout as Duration,
      healthyThreshold: health.healthy_threshold,
      unhealthyThreshold: health.unhealthy_threshold,
      expectStatus: health.expect_status,
    };
    if (health.expect_body !== undefined) options.health.expectBody = textMatch(health.expect_body);
    if (health.headers !== undefined) options.health.headers = health.headers;
  }
  const outlier = cluster.outlier_detection;
  options.outlierDetection =
    outlier === false
      ? false
      : {
          consecutive5xx: outlier.consecutive_5xx,
          consecutiveGatewayErrors: outlier.consecutive_gateway_errors,
          consecutiveLocalOriginFailures: outlier.consecutive_local_failures,
          intervalMs: outlier.interval as Duration,
          baseEjectionMs: outlier.base_ejection_time as Duration,
          maxEjectionMs: outlier.max_ejection_time as Duration,
          maxEjectionPercent: outlier.max_ejection_percent,
        };
  const breaker = cluster.circuit_breaker;
  if (breaker !== undefined && breaker !== false) {
    options.circuitBreaker = {
      failureThreshold: breaker.failure_threshold,
      windowMs: breaker.window as Duration,
      minimumRequests: breaker.minimum_requests,
      openMs: breaker.recovery_timeout as Duration,
      halfOpenMaxRequests: breaker.half_open_max_requests,
      successThreshold: breaker.success_threshold,
    };
    if (breaker.failure_rate_threshold !== undefined)
      options.circuitBreaker.failureRateThreshold = breaker.failure_rate_threshold;
  }
  const retry = cluster.retry_policy;
  if (retry === false) options.retry = false;
  else {
    // "5xx, reset, 503" or a list: names trimmed, statuses as numbers.
    const retryOn = (typeof retry.retry_on === 'string' ? retry.retry_on.split(',') : retry.retry_on).map(
      (condition) => {
        if (typeof condition === 'number') return condition;
        const name = condition.trim();
        return /^\d+$/.test(name) ? Number(name) : name;
      },
    );
    options.retry = {
      attempts: retry.attempts,
      retryOn: retryOn as NonNullable<Exclude<ClusterOptions['retry'], false | undefined>['retryOn']>,
      backoff: { baseMs: retry.backoff_base as Duration, maxMs: retry.backoff_max as Duration },
      budget: { budgetPercent: retry.budget_percent, minRetriesPerSecond: retry.min_retries_per_second },
    };
    if (retry.per_try_timeout !== undefined)
      options.retry.perTryTimeoutMs = retry.per_try_timeout as Duration;
  }
  return options;
}

/** The clusters a listener sends to, by name. */
export function listenerClusters(listener: ListenerConfig): string[] {
  return listener.cluster !== undefined
    ? [listener.cluster]
    : (listener.routes ?? []).map((route) => route.cluster);
}

function affinityOption(affinity: SessionAffinityConfig, tls: boolean): ProxyOptions['sessionAffinity'] {
  if (affinity === true || affinity === 'ip') return 'ip';
  if (affinity === 'mcp') return 'mcp';
  if (typeof affinity !== 'object') return undefined;
  if ('header' in affinity) return { header: affinity.header };
  if ('mcp' in affinity) {
    const mcp = affinity.mcp;
    return {
      mcp: {
        mode: mcp.mode,
        maxSessions: mcp.max_sessions,
        sessionIdleMs: mcp.session_idle as Duration,
        ...(mcp.idempotent_tools === undefined ? {} : { idempotentTools: mcp.idempotent_tools }),
      },
    };
  }
  const cookie = typeof affinity.cookie === 'string' ? { name: affinity.cookie } : affinity.cookie;
  return {
    cookie: cookie.name,
    secure: 'secure' in cookie && cookie.secure !== undefined ? cookie.secure : tls,
    ...('same_site' in cookie ? { sameSite: cookie.same_site, path: cookie.path } : {}),
    ...('domain' in cookie && cookie.domain !== undefined ? { domain: cookie.domain } : {}),
    ...('max_age' in cookie && cookie.max_age !== undefined ? { maxAgeMs: cookie.max_age as Duration } : {}),
  };
}

/** Where a request to `name` goes: the cluster, or the split its `traffic_split` asks for. */
function target(name: string, config: ProxyConfig, clusters: Readonly<Record<string, Cluster>>) {
  const cluster = clusters[name] as Cluster;
  const split = config.clusters[name]?.traffic_split;
  if (split === undefined) return { cluster };
  const targets: SplitTarget[] = split.splits.map((s) => {
    const out: SplitTarget = { cluster: clusters[s.backend_group] as Cluster, weight: s.percentage };
    const headers = headerMatches(s.match_criteria?.headers);
    if (headers !== undefined) out.headers = headers;
    return out;
  });
  const rest = 100 - split.splits.reduce((sum, s) => sum + s.percentage, 0);
  if (rest > 0) targets.push({ cluster: clusters[split.fallback_group ?? name] as Cluster, weight: rest });
  return { split: targets };
}

/** The library options of one listener's proxy. */
export function proxyOptions(
  listener: ListenerConfig,
  config: ProxyConfig,
  clusters: Readonly<Record<string, Cluster>>,
  limits: Readonly<Record<string, ClusterRateLimits>>,
  extra: Pick<ProxyOptions, 'accessLog' | 'logger' | 'affinitySecret'>,
): ProxyOptions {
  // A cluster's rate limits apply to every request sent to it, split or not, from any listener.
  const limited = (name: string): Pick<ProxyRoute, 'rateLimit'> => {
    const classes = limits[name]?.classes;
    return classes === undefined ? {} : { rateLimit: classes };
  };
  const tls = listener.protocol === 'https' || listener.ssl?.enabled === true;
  const timeouts = listener.timeouts;
  const routes: ProxyRoute[] =
    listener.cluster !== undefined
      ? [
          {
            name: listener.name,
            ...target(listener.cluster, config, clusters),
            ...limited(listener.cluster),
          },
        ]
      : (listener.routes ?? []).map((route, i) => {
          const match: NonNullable<ProxyRoute['match']> = {};
          const m = route.match;
          if (m.path_prefix !== undefined) match.pathPrefix = m.path_prefix;
          if (m.host !== undefined) match.host = m.host;
          if (m.method !== undefined) match.method = m.method;
          const headers = headerMatches(m.headers);
          if (headers !== undefined) match.headers = headers;
          if (m.mcp_method !== undefined) match.mcpMethod = textMatch(m.mcp_method);
          if (m.mcp_name !== undefined) match.mcpName = textMatch(m.mcp_name);
          return {
            name: route.name ?? `${listener.name}#${i}`,
            match,
            stripPrefix: route.strip_prefix,
            ...target(route.cluster, config, clusters),
            ...limited(route.cluster),
          };
        });
  // A listener's affinity: its own, else that of the first cluster it sends to that has one; the
  // hashing algorithms key by client address when nothing else is said.
  const names = listenerClusters(listener);
  const affinity =
    listener.session_affinity ??
    names
      .map((name) => config.clusters[name]?.session_affinity)
      .find((a) => a !== undefined && a !== false) ??
    (names.some((name) => KEYED.has(config.clusters[name]?.load_balancing ?? '')) ? 'ip' : undefined);
  const options: ProxyOptions = {
    routes,
    timeouts: {
      firstByteMs: timeouts.first_byte as Duration,
      idleMs: timeouts.idle as Duration,
      clientHeadersMs: timeouts.client_headers as Duration,
      tunnelIdleMs: timeouts.tunnel_idle as Duration,
    },
    trustProxy: listener.trust_proxy ?? config.global.trust_proxy,
    maxBodyBytes: sizeBytes(listener.max_body_size),
    requestId: listener.request_id,
    rewriteHost: listener.rewrite_host,
    ...extra,
  };
  const sessionAffinity = affinity === undefined ? undefined : affinityOption(affinity, tls);
  if (sessionAffinity !== undefined) options.sessionAffinity = sessionAffinity;
  return options;
}

/** Worker processes for `workers`. */
export function workerCount(workers: number | 'auto'): number {
  return workers === 'auto' ? Math.max(1, cpus().length) : workers;
}
