// Public API of mcgravity. This file only re-exports; see docs/architecture.md for the layers.

export {
  type AdminChange,
  type AdminCluster,
  type AdminOptions,
  type AdminSetting,
  createAdmin,
} from './admin/createAdmin.js';
export { type MetricsSources, type ProxyMetricsSource, renderPrometheus } from './admin/metrics.js';
export type { Balancer, BalancerName, PickContext } from './balancer/Balancer.js';
export { ConsistentHashBalancer, type ConsistentHashOptions } from './balancer/ConsistentHashBalancer.js';
export { type BalancerOptions, balancerNames, createBalancer } from './balancer/createBalancer.js';
export { IpHashBalancer, type IpHashOptions } from './balancer/IpHashBalancer.js';
export { LeastConnectionsBalancer } from './balancer/LeastConnectionsBalancer.js';
export { LeastRequestBalancer, type LeastRequestOptions } from './balancer/LeastRequestBalancer.js';
export { MaglevBalancer, type MaglevOptions } from './balancer/MaglevBalancer.js';
export { PeakEwmaBalancer, type PeakEwmaOptions } from './balancer/PeakEwmaBalancer.js';
export { PowerOfChoicesBalancer, type PowerOfChoicesOptions } from './balancer/PowerOfChoicesBalancer.js';
export { PriorityBalancer, type PriorityOptions } from './balancer/PriorityBalancer.js';
export { RandomBalancer, type RandomBalancerOptions } from './balancer/RandomBalancer.js';
export { RoundRobinBalancer } from './balancer/RoundRobinBalancer.js';
export type { InnerBalancer } from './balancer/tiers.js';
export { WeightedRoundRobinBalancer } from './balancer/WeightedRoundRobinBalancer.js';
export { ZoneAwareBalancer, type ZoneAwareOptions } from './balancer/ZoneAwareBalancer.js';
export {
  type CallOutcome,
  CircuitBreaker,
  type CircuitBreakerEvents,
  type CircuitBreakerOptions,
  type CircuitBreakerStats,
  type CircuitState,
  type OpenReason,
} from './breaker/CircuitBreaker.js';
export {
  Cluster,
  type ClusterEvents,
  type ClusterFetchInit,
  type ClusterOptions,
  type ClusterRequestOptions,
  type ClusterResponse,
  type ClusterStats,
  createCluster,
  type ExecuteOptions,
  servedBy,
} from './cluster/Cluster.js';
export type { DiscoveryStats } from './cluster/DiscoveryRunner.js';
export type { EndpointStats } from './cluster/ManagedEndpoint.js';
export type {
  ClusterStreamFactory,
  ClusterStreamHead,
  ClusterStreamResult,
  ClusterStreamSettle,
} from './cluster/ResponseRelay.js';
export { type Clock, type RandomSource, systemClock, systemRandom } from './core/clock.js';
export { type Duration, parseDuration } from './core/duration.js';
export {
  type BackendConfig,
  type Endpoint,
  type NormalizedBackend,
  normalizeBackend,
} from './core/endpoint.js';
export {
  type ErrorCode,
  errorStatus,
  isMcgravityError,
  McgravityError,
  type McgravityErrorOptions,
} from './core/errors.js';
export { type FailureKind, failureKind, retryAfterMs } from './core/failures.js';
export { hashKey, murmur3Bytes, murmur3String } from './core/hash.js';
export type { Logger } from './core/log.js';
export { PeakEwma, type PeakEwmaEstimateOptions } from './core/PeakEwma.js';
export type { Discovery, DiscoveryResult } from './discovery/Discovery.js';
export { type DnsDiscoveryOptions, type DnsRecordType, dnsDiscovery } from './discovery/dnsDiscovery.js';
export { type FileDiscoveryOptions, fileDiscovery } from './discovery/fileDiscovery.js';
export { type GrpcCheckOptions, grpcCheck } from './health/grpcCheck.js';
export {
  type CheckResult,
  type CheckTarget,
  type EndpointHealth,
  type HealthCheckFunction,
  type HealthCheckOptions,
  HealthMonitor,
  type HealthMonitorEvents,
  type StatusMatcher,
  tcpCheck,
} from './health/HealthMonitor.js';
export {
  type CallResult,
  type EjectionReason,
  OutlierDetector,
  type OutlierEvents,
  type OutlierOptions,
} from './health/OutlierDetector.js';
export { type RateLimitHeaderOptions, rateLimitHeaders, setRateLimitHeaders } from './limit/headers.js';
export { MemoryStore, type MemoryStoreOptions } from './limit/MemoryStore.js';
export {
  RateLimiter,
  type RateLimiterEvents,
  type RateLimiterOptions,
  type RateLimiterStats,
  type RateLimitKey,
} from './limit/RateLimiter.js';
export type { RateLimitAlgorithm, RateLimitDecision, RateLimitRule, ResolvedRule } from './limit/rules.js';
export type { RateLimitStore } from './limit/store.js';
export type {
  AttemptEndMessage,
  AttemptStartMessage,
  EndpointMessage,
  ProxyRequestEndMessage,
  ProxyRequestStartMessage,
  RetryMessage,
} from './observe/diagnostics.js';
export type { LatencySummary } from './observe/LatencyWindow.js';
export { Pool, type PoolOptions, type PoolStats } from './pool/Pool.js';
export {
  type AccessLogEntry,
  type CookieAffinity,
  createProxy,
  type McpAffinity,
  type Proxy,
  type ProxyErrorInfo,
  type ProxyOptions,
  type ProxyRateLimit,
  type ProxyRateLimitExemption,
  type ProxyRateLimits,
  type ProxyRoute,
  type ProxyTimeouts,
  type RateLimitKeySource,
  type RateLimitMatch,
  type UpstreamRequest,
  type UpstreamResponse,
} from './proxy/createProxy.js';
export {
  encodeGrpcMessage,
  GrpcStatus,
  grpcStatusOf,
} from './proxy/grpc.js';
export type { Http2ListenOptions, ProxyServer, ProxyTlsOptions } from './proxy/http2.js';
export type { RouteMatch, SplitTarget } from './proxy/routes.js';
export type { TrustProxy } from './proxy/trust.js';
export { RetryBudget, type RetryBudgetOptions, type RetryBudgetStats } from './retry/RetryBudget.js';
export {
  type AttemptContext,
  isIdempotentMethod,
  type RetryCallOptions,
  type RetryCondition,
  type RetryOptions,
  RetryPolicy,
  type RetryPolicyEvents,
  type RetryPolicyStats,
  type RetryReason,
} from './retry/RetryPolicy.js';
export {
  createTcpProxy,
  type TcpProxy,
  type TcpProxyOptions,
  type TcpProxyStats,
} from './tcp/createTcpProxy.js';
export {
  type ConnectionAddresses,
  type ProxyProtocolVersion,
  proxyProtocolHeader,
} from './tcp/proxyProtocol.js';
