/**
 * The options of a {@link Cluster}, the shapes of its calls and results, its events, and how the
 * options become the parts a cluster is made of (a balancer, a retry policy).
 */

import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Balancer, BalancerName } from '../balancer/Balancer.js';
import { createBalancer } from '../balancer/createBalancer.js';
import { PriorityBalancer } from '../balancer/PriorityBalancer.js';
import type { CircuitBreakerOptions } from '../breaker/CircuitBreaker.js';
import type { Clock, RandomSource } from '../core/clock.js';
import type { Duration } from '../core/duration.js';
import type { BackendConfig, Endpoint } from '../core/endpoint.js';
import type { Logger } from '../core/log.js';
import { describeValue } from '../core/validate.js';
import type { Discovery } from '../discovery/Discovery.js';
import type { HealthCheckOptions } from '../health/HealthMonitor.js';
import type { OutlierOptions } from '../health/OutlierDetector.js';
import type { LatencySummary } from '../observe/LatencyWindow.js';
import type { PoolOptions } from '../pool/Pool.js';
import { type RetryOptions, RetryPolicy } from '../retry/RetryPolicy.js';
import type { DiscoveryStats } from './DiscoveryRunner.js';
import type { EndpointStats, ManagedEndpoint } from './ManagedEndpoint.js';

/** Options of {@link createCluster}. */
export interface ClusterOptions {
  /** Name in events, metrics and errors. @default 'default' */
  name?: string;
  /** The backends: URLs or configurations. At least one, unless `allowEmpty` or `discovery`. */
  backends?: readonly (string | BackendConfig)[];
  /**
   * Backends found by a source (DNS, a watched file, your own) and kept in step with it: new ones
   * are added, gone ones drain (up to 30 s) and leave, changed weights are set. A failed look-up
   * keeps the last good set. Endpoints in `backends` stay whatever the source says.
   */
  discovery?: Discovery;
  /**
   * Let the cluster be empty: accept an empty `backends` (they are added later, with `add()` or the
   * admin API), and let an empty answer from `discovery` remove every endpoint it found (without
   * this, an empty answer keeps the last good set). @default false
   */
  allowEmpty?: boolean;
  /** A built-in algorithm's name or your own balancer. @default 'least-request' */
  balancer?: BalancerName | Balancer;
  /** Active health checks; off unless given. */
  health?: HealthCheckOptions | false;
  /** Passive outlier detection. @default on, with OutlierDetector's defaults */
  outlierDetection?: OutlierOptions | false;
  /**
   * One breaker per endpoint, on top of outlier detection. Off by default: one ejection mechanism per
   * endpoint (outlier detection) keeps recovery simple, as in Envoy. When on, an endpoint whose circuit
   * is open counts as ejected for panic mode and `maxEjectionPercent`, and panic mode sends to it
   * all the same. @default false
   */
  circuitBreaker?: Omit<CircuitBreakerOptions, 'clock' | 'name'> | false;
  /**
   * Retries on another endpoint. @default on, with RetryPolicy's defaults (3 attempts; a budget of
   * 20 % of the requests of the last 10 s plus 10 per second). Attempts that never reached a backend
   * are requeued outside the budget.
   */
  retry?: Omit<RetryOptions, 'clock' | 'random' | 'onDiscard'> | false;
  /** Connection pool per endpoint. */
  pool?: PoolOptions;
  /** Ramp-up time of an endpoint that (re)joins; 0 turns slow start off. @default 0 */
  slowStartMs?: Duration;
  /** Below this percentage of eligible endpoints, balance across all of them. 0 turns panic mode off. @default 50 */
  panicThreshold?: number;
  /** Window of the latency percentiles and request rates in `stats()`. @default 60_000 */
  statsWindowMs?: Duration;
  /** Time source for every timer in the cluster. @default systemClock */
  clock?: Clock;
  /** Random source for the balancer and retry jitter. @default systemRandom */
  random?: RandomSource;
  /** A pino-compatible logger for endpoint state, panic, breakers and refused retries. @default silent */
  logger?: Logger;
}

/** Options of one {@link Cluster.execute} call. */
export interface ExecuteOptions {
  /** Hash key for consistent-hash balancers (session, user, client address). */
  key?: string;
  /** The call may be repeated safely on another endpoint. @default false */
  idempotent?: boolean;
  /** Aborts the call. */
  signal?: AbortSignal;
}

/** Options of {@link Cluster.request}: undici's request options, plus a hash key. */
export interface ClusterRequestOptions {
  /** @default 'GET' */
  method?: string;
  /** Path and query, appended to the endpoint's origin. */
  path: string;
  headers?: Record<string, string | string[] | undefined>;
  /** A string or bytes can be replayed on a retry; a stream cannot, so such a request is not retried after it was sent. */
  body?: string | Uint8Array | Readable | null;
  key?: string;
  /** Endpoint id to use when it is eligible (session affinity); otherwise the balancer picks. */
  prefer?: string;
  /**
   * Endpoint id the request must go to (the owner of a session): no other endpoint is tried, a
   * draining owner still serves it, and an owner that was removed or is down by active health checks
   * fails the request with `ESESSIONGONE` (404).
   */
  pin?: string;
  /** Endpoint ids not to pick (for example those whose per-tool breaker is open). */
  exclude?: ReadonlySet<string>;
  /** Overrides the method's idempotency (GET, PUT, DELETE… are idempotent). */
  idempotent?: boolean;
  signal?: AbortSignal;
  /**
   * Time to the response headers, per attempt, timed to the millisecond by one shared timer per
   * duration (`stream()` from the moment the request is written, `request()` from its dispatch): a
   * late answer fails as a `timeout` (`EUPSTREAMTIMEOUT`), which the retry policy may retry elsewhere.
   */
  headersTimeoutMs?: number;
}

/** `fetch()`'s `RequestInit`, plus the cluster's choices of {@link ClusterRequestOptions}. */
export interface ClusterFetchInit extends RequestInit {
  key?: string;
  prefer?: string;
  pin?: string;
  exclude?: ReadonlySet<string>;
  /** Overrides the method's idempotency (GET, PUT, DELETE… are idempotent). */
  idempotent?: boolean;
}

/** What {@link Cluster.request} resolves with: undici's response and the endpoint that served it. */
export interface ClusterResponse {
  readonly statusCode: number;
  readonly headers: Record<string, string | string[] | undefined>;
  /** The streamed body (undici BodyReadable): `.text()`, `.json()`, `.dump()`, or pipe it. */
  readonly body: Dispatcher.ResponseData['body'];
  readonly endpoint: Endpoint;
}

/** Statistics of a cluster. */
export interface ClusterStats {
  readonly name: string;
  readonly endpoints: readonly EndpointStats[];
  /** Endpoints the balancer may pick now. */
  readonly eligible: number;
  /** True while panic mode balances across every endpoint. */
  readonly panic: boolean;
  readonly requests: number;
  readonly errors: number;
  readonly inflight: number;
  readonly latency: LatencySummary;
  readonly retries: number;
  /** Attempts sent again elsewhere because the one before never reached its backend. */
  readonly requeues: number;
  readonly retryBudgetExhausted: number;
  /** The discovery source's state, when the cluster has one. */
  readonly discovery?: DiscoveryStats;
}

/** Events of a {@link Cluster}. */
export interface ClusterEvents {
  'endpoint:added': (info: { id: string }) => void;
  'endpoint:removed': (info: { id: string }) => void;
  'endpoint:draining': (info: { id: string }) => void;
  'endpoint:up': (info: { id: string }) => void;
  'endpoint:down': (info: { id: string; reason: string }) => void;
  'endpoint:ejected': (info: { id: string; reason: string; ejectionMs: number }) => void;
  'endpoint:restored': (info: { id: string }) => void;
  'circuit:open': (info: { id: string }) => void;
  'circuit:half-open': (info: { id: string }) => void;
  'circuit:close': (info: { id: string }) => void;
  /** Panic mode started (`active: true`) or ended. */
  panic: (info: { active: boolean; eligible: number; total: number }) => void;
  /** The eligible set changed. */
  membership: (info: { eligible: number; total: number }) => void;
  /** The discovery source changed the membership (ids added, draining to leave, given a new weight). */
  'discovery:update': (info: { added: string[]; removed: string[]; reweighted: string[] }) => void;
  /** The discovery source failed, or gave an answer that was refused: `kept` endpoints stay as they were. */
  'discovery:error': (info: { error: Error; kept: number }) => void;
}

/** Option names {@link Cluster} accepts. */
export const CLUSTER_OPTIONS = [
  'name',
  'backends',
  'discovery',
  'allowEmpty',
  'balancer',
  'health',
  'outlierDetection',
  'circuitBreaker',
  'retry',
  'pool',
  'slowStartMs',
  'panicThreshold',
  'statsWindowMs',
  'clock',
  'random',
  'logger',
];

/**
 * The cluster's balancer: a named algorithm inside priority tiers (backups take over as primaries
 * fail), or the caller's own balancer as it is.
 */
export function resolveBalancer(
  balancer: BalancerName | Balancer | undefined,
  random: RandomSource,
): Balancer<ManagedEndpoint> {
  const chosen = balancer ?? 'least-request';
  if (typeof chosen === 'string') {
    const innerOptions =
      chosen === 'round-robin' || chosen === 'weighted-round-robin' || chosen === 'least-connections'
        ? {}
        : { random };
    createBalancer(chosen, innerOptions); // refuses an unknown name now
    return new PriorityBalancer<ManagedEndpoint>({ inner: chosen, innerOptions, random });
  }
  if (
    chosen !== null &&
    typeof chosen === 'object' &&
    typeof chosen.pick === 'function' &&
    typeof chosen.update === 'function'
  ) {
    return chosen as unknown as Balancer<ManagedEndpoint>;
  }
  throw new TypeError(`balancer must be an algorithm name or a Balancer, got ${describeValue(chosen)}`);
}

/** The cluster's retry policy (off with `false`), on the cluster's clock and random source. */
export function resolveRetry(
  retry: ClusterOptions['retry'],
  clock: Clock,
  random: RandomSource,
  onDiscard: (value: unknown) => void,
): RetryPolicy | undefined {
  if (retry === false) return undefined;
  return new RetryPolicy({ ...(retry ?? {}), clock, random, onDiscard });
}
