/**
 * An endpoint as a Cluster keeps it: the configured backend, its live load (in flight, peak-EWMA
 * latency), what decides its eligibility (active health, passive ejection, draining, its breaker),
 * its slow-start ramp, its pool of connections and its counters. Balancers see it through the
 * read-only `Endpoint` interface.
 */
import { CircuitBreaker, type CircuitBreakerOptions, type CircuitState } from '../breaker/CircuitBreaker.js';
import type { Clock } from '../core/clock.js';
import { type Endpoint, httpOrigin, type NormalizedBackend } from '../core/endpoint.js';
import { PeakEwma } from '../core/PeakEwma.js';
import { type LatencySummary, LatencyWindow } from '../observe/LatencyWindow.js';
import { Pool, type PoolOptions, type PoolStats } from '../pool/Pool.js';

/** Statistics of one endpoint, from {@link Cluster.stats}. */
export interface EndpointStats {
  readonly id: string;
  readonly url: string;
  /** Configured weight. */
  readonly weight: number;
  /** Weight the balancer uses now (lower during slow start). */
  readonly effectiveWeight: number;
  readonly zone?: string;
  readonly priority: number;
  /** Whether the balancer may pick it now. */
  readonly eligible: boolean;
  /** Active health checks say it is up (true when checks are off). */
  readonly healthy: boolean;
  /** Outlier detection has taken it out. */
  readonly ejected: boolean;
  readonly draining: boolean;
  /** Out of rotation for a while after answering 503 or 429 with a `Retry-After`. */
  readonly coolingDown: boolean;
  /** Its circuit breaker's state, or `'closed'` without one. */
  readonly circuit: CircuitState;
  readonly inflight: number;
  /** WebSocket (upgraded) tunnels open now, counted in `inflight` too. */
  readonly tunnels: number;
  /** Requests started since it was added. */
  readonly requests: number;
  /** Requests that failed (errors and 5xx answers). */
  readonly errors: number;
  /** Peak-EWMA of time to first byte, in ms. */
  readonly latencyEwma: number;
  /** Time to first byte over the recent window, and requests per second. */
  readonly latency: LatencySummary;
  readonly pool: PoolStats;
}

/** One backend inside a Cluster. */
export class ManagedEndpoint implements Endpoint {
  readonly id: string;
  readonly url: string;
  /** The backend's origin, to which request paths are appended. */
  readonly origin: string;
  /**
   * The path of the backend's URL without its trailing slash (`/api/v2` for
   * `http://10.0.0.1:3001/api/v2/`), put before every request's path; '' for none.
   */
  readonly pathPrefix: string;
  readonly zone?: string;
  readonly priority: number;
  readonly metadata?: Readonly<Record<string, unknown>>;
  /** The backend's bound on connections (its pool's size; a TCP proxy's connections to it). */
  readonly maxConnections?: number;
  readonly pool: Pool;
  readonly breaker: CircuitBreaker | undefined;
  readonly #ewma: PeakEwma;
  readonly latency: LatencyWindow;
  configuredWeight: number;
  inflight = 0;
  /** Upgraded connections (WebSockets) open through it; each also counts in `inflight`. */
  tunnels = 0;
  healthy = true;
  ejected = false;
  draining = false;
  /** Out of rotation until then, after a `Retry-After` (cluster clock). */
  coolingUntil: number | undefined;
  /** When it last became eligible, if it is ramping up. */
  slowStartSince: number | undefined;
  requests = 0;
  errors = 0;
  #weight: number;

  constructor(
    backend: NormalizedBackend,
    options: {
      pool: PoolOptions;
      breaker: CircuitBreakerOptions | false;
      clock: Clock;
      latencyWindowMs: number;
    },
  ) {
    this.id = backend.id;
    this.url = backend.url;
    const url = new URL(backend.url);
    this.origin = httpOrigin(url);
    this.pathPrefix = url.pathname.replace(/\/+$/, '');
    if (backend.zone !== undefined) this.zone = backend.zone;
    this.priority = backend.priority;
    if (backend.metadata !== undefined) this.metadata = backend.metadata;
    if (backend.maxConnections !== undefined) this.maxConnections = backend.maxConnections;
    this.configuredWeight = backend.weight;
    this.#weight = backend.weight;
    const poolOptions =
      backend.maxConnections === undefined
        ? options.pool
        : { ...options.pool, connections: backend.maxConnections };
    this.pool = new Pool(this.origin, poolOptions);
    this.breaker =
      options.breaker === false
        ? undefined
        : new CircuitBreaker({ ...options.breaker, clock: options.clock, name: `endpoint ${this.id}` });
    this.#ewma = new PeakEwma({ clock: options.clock });
    this.latency = new LatencyWindow(options.latencyWindowMs, options.clock);
  }

  /** The weight balancers see: the configured one, scaled down while slow start ramps. */
  get weight(): number {
    return this.#weight;
  }

  /** Peak-EWMA of time to first byte, decayed to now. */
  get latencyEwma(): number {
    return this.#ewma.value;
  }

  /** Sets the effective weight (the cluster does, on slow-start ticks and weight changes). */
  setEffectiveWeight(weight: number): void {
    this.#weight = weight;
  }

  /** Whether the breaker lets traffic reach it (an open circuit does not). */
  get circuitAdmits(): boolean {
    return this.breaker === undefined || this.breaker.state !== 'open';
  }

  /** Records the time to first byte of one response, observed at `now`. */
  observeLatency(ms: number, now: number): void {
    this.#ewma.observe(ms, now);
    this.latency.record(ms, now);
  }

  stats(eligible: boolean): EndpointStats {
    return {
      id: this.id,
      url: this.url,
      weight: this.configuredWeight,
      effectiveWeight: this.#weight,
      ...(this.zone === undefined ? {} : { zone: this.zone }),
      priority: this.priority,
      eligible,
      healthy: this.healthy,
      ejected: this.ejected,
      draining: this.draining,
      coolingDown: this.coolingUntil !== undefined,
      circuit: this.breaker?.state ?? 'closed',
      inflight: this.inflight,
      tunnels: this.tunnels,
      requests: this.requests,
      errors: this.errors,
      latencyEwma: this.latencyEwma,
      latency: this.latency.summary(),
      pool: this.pool.stats(),
    };
  }
}
