/**
 * A Cluster: one named set of backends and everything that decides where a request goes and what
 * happens when it fails. It wires the primitives together and adds nothing of their logic:
 *
 * - options.ts: the options, call shapes, events, and the balancer and retry policy they make;
 * - Eligibility.ts: which endpoints take traffic (health, ejection, breaker, cool-down, drain,
 *   panic mode, slow start), handed to the balancer;
 * - Attempt.ts: one try from pick to end (in-flight count, pool slot, breaker permit, outcome);
 * - retrying.ts: retries and requeues on endpoints not tried yet;
 * - StreamCall.ts: a `stream()` / `streamInto()` call, its tries and the settle told of its end;
 * - ResponseRelay.ts: `stream()`'s dispatch handler, relaying an answer into a Writable.
 *
 * Requests: `execute(fn)` runs any call against a picked endpoint; `request()` is undici-style and
 * streams the body; `stream()` writes the answer into a Writable; `fetch()` is WHATWG fetch. All
 * retry on a different endpoint as the retry policy allows, and every try is an {@link Attempt}.
 */
import { EventEmitter } from 'eventemitter3';
import type { Dispatcher } from 'undici';
import type { Balancer, PickContext } from '../balancer/Balancer.js';
import type { CircuitBreakerOptions } from '../breaker/CircuitBreaker.js';
import { type Clock, systemClock, systemRandom } from '../core/clock.js';
import { type Duration, optionalDuration } from '../core/duration.js';
import { type BackendConfig, type Endpoint, normalizeBackend } from '../core/endpoint.js';
import { McgravityError } from '../core/errors.js';
import { headerOf, statusOf } from '../core/failures.js';
import { optionalLogger } from '../core/log.js';
import { checkKnownOptions, describeValue, optionalFunction, optionalNumber } from '../core/validate.js';
import type { Discovery } from '../discovery/Discovery.js';
import { HealthMonitor } from '../health/HealthMonitor.js';
import { OutlierDetector } from '../health/OutlierDetector.js';
import { LatencyWindow } from '../observe/LatencyWindow.js';
import { closePools, http2Dispatcher, type PoolOptions, resolvePoolOptions } from '../pool/Pool.js';
import type { RetryPolicy } from '../retry/RetryPolicy.js';
import type { Attempt } from './Attempt.js';
import { AttemptSource } from './AttemptSource.js';
import { DiscoveryRunner, type DiscoveryTarget } from './DiscoveryRunner.js';
import { publishCluster } from './diagnostics.js';
import { Eligibility } from './Eligibility.js';
import { logCluster } from './logging.js';
import { ManagedEndpoint } from './ManagedEndpoint.js';
import {
  CLUSTER_OPTIONS,
  type ClusterEvents,
  type ClusterFetchInit,
  type ClusterOptions,
  type ClusterRequestOptions,
  type ClusterResponse,
  type ClusterStats,
  type ExecuteOptions,
  resolveBalancer,
  resolveRetry,
} from './options.js';
import type { ClusterStreamFactory, ClusterStreamResult, ClusterStreamSettle } from './ResponseRelay.js';
import { type RetryingCall, withRetries } from './retrying.js';
import { streamCall } from './StreamCall.js';
import { discardBody, fetchCall, requestCall } from './transports.js';

export type {
  ClusterEvents,
  ClusterFetchInit,
  ClusterOptions,
  ClusterRequestOptions,
  ClusterResponse,
  ClusterStats,
  ExecuteOptions,
} from './options.js';
export { servedBy } from './transports.js';

/** A cluster of backends; see the module comment. */
export class Cluster extends EventEmitter<ClusterEvents> {
  readonly name: string;
  readonly #balancer: Balancer<ManagedEndpoint>;
  readonly #eligibility: Eligibility;
  readonly #health: HealthMonitor | undefined;
  readonly #outliers: OutlierDetector | undefined;
  readonly #breakerOptions: CircuitBreakerOptions | false;
  readonly #retry: RetryPolicy | undefined;
  readonly #poolOptions: PoolOptions;
  readonly #slowStartMs: number;
  readonly #statsWindowMs: number;
  readonly #clock: Clock;
  readonly #drainTimers = new Set<unknown>();
  /** Where every attempt reports: one object for the cluster, so a request allocates no callbacks. */
  readonly #attempts: AttemptSource;
  #discovery: DiscoveryRunner | undefined;
  /** The HTTP/2 connections of HTTP health checks, for a cluster whose backends speak HTTP/2. */
  #checkDispatcher: Dispatcher | undefined;
  #closed = false;

  constructor(options: ClusterOptions) {
    super();
    if (options === null || typeof options !== 'object') throw new TypeError('createCluster needs options');
    checkKnownOptions(options, CLUSTER_OPTIONS, 'Cluster');
    this.name = options.name ?? 'default';
    if (typeof this.name !== 'string' || this.name === '')
      throw new TypeError('name must be a non-empty string');
    const backends = options.backends ?? [];
    if (!Array.isArray(backends)) throw new TypeError('backends must be an array of URLs or backend objects');
    const discovery = checkDiscovery(options.discovery);
    this.#clock = options.clock ?? systemClock;
    const random = optionalFunction(options.random, 'random', systemRandom);
    this.#balancer = resolveBalancer(options.balancer, random);
    this.#poolOptions = options.pool ?? {};
    resolvePoolOptions(this.#poolOptions);
    this.#breakerOptions =
      options.circuitBreaker === undefined || options.circuitBreaker === false
        ? false
        : { ...options.circuitBreaker };
    this.#slowStartMs = optionalDuration(options.slowStartMs, 'slowStartMs', 0);
    const panicThreshold = optionalNumber(options.panicThreshold, 'panicThreshold', 50, { min: 0, max: 100 });
    this.#statsWindowMs = optionalDuration(options.statsWindowMs, 'statsWindowMs', 60_000);
    this.#retry = resolveRetry(options.retry, this.#clock, random, discardBody);
    // Checked before the detectors and their timers are made, so that a refusal leaves nothing behind.
    if (backends.length === 0 && options.allowEmpty !== true && discovery === undefined) {
      throw new TypeError(
        `cluster ${this.name}: backends is empty; give at least one, a discovery source, or allowEmpty: true to add them later`,
      );
    }
    if (options.outlierDetection !== false) {
      this.#outliers = new OutlierDetector({ ...(options.outlierDetection ?? {}), clock: this.#clock });
    }
    this.#eligibility = new Eligibility({
      balancer: this.#balancer,
      slowStartMs: this.#slowStartMs,
      panicThreshold,
      clock: this.#clock,
      outliers: this.#outliers,
      events: this,
    });
    this.#attempts = new AttemptSource({
      name: this.name,
      balancer: this.#balancer,
      eligibility: this.#eligibility,
      outliers: this.#outliers,
      latency: new LatencyWindow(this.#statsWindowMs, this.#clock),
      clock: this.#clock,
    });
    const marks = this.#eligibility;
    this.#outliers?.on('endpoint:ejected', ({ id, reason, ejectionMs }) =>
      marks.mark(
        id,
        (e) => (e.ejected = true),
        () => this.emit('endpoint:ejected', { id, reason, ejectionMs }),
      ),
    );
    this.#outliers?.on('endpoint:restored', ({ id }) =>
      marks.mark(
        id,
        (e) => (e.ejected = false),
        () => this.emit('endpoint:restored', { id }),
      ),
    );
    if (options.health !== undefined && options.health !== false) {
      // HTTP checks speak what the backends speak: HTTP/2 to HTTP/2 backends.
      const protocol = this.#poolOptions.protocol ?? 'http1';
      if (
        protocol !== 'http1' &&
        options.health.dispatcher === undefined &&
        options.health.check === undefined
      ) {
        this.#checkDispatcher = http2Dispatcher(this.#poolOptions);
      }
      const health = new HealthMonitor({
        ...options.health,
        ...(this.#checkDispatcher === undefined ? {} : { dispatcher: this.#checkDispatcher }),
        clock: options.health.clock ?? this.#clock,
        random,
      });
      this.#health = health;
      health.on('endpoint:down', ({ id, reason }) =>
        marks.mark(
          id,
          (e) => (e.healthy = false),
          () => this.emit('endpoint:down', { id, reason }),
        ),
      );
      health.on('endpoint:up', ({ id }) =>
        marks.mark(
          id,
          (e) => (e.healthy = true),
          () => this.emit('endpoint:up', { id }),
        ),
      );
      // A passing active check returns an ejected endpoint at once (Envoy's uneject on health).
      health.on('check', ({ id, ok }) => {
        if (ok && health.isHealthy(id)) this.#outliers?.restore(id);
      });
    }
    publishCluster(this.name, this, this.#retry);
    const logger = optionalLogger(options.logger);
    if (logger !== undefined) logCluster(this.name, this, logger, this.#health, this.#retry, this.#clock);
    backends.forEach((backend, i) => {
      this.#add(backend, `backends[${i}]`, false);
    });
    this.#eligibility.rebuild();
    if (discovery !== undefined) {
      this.#discovery = new DiscoveryRunner(discovery, this.#discoveryTarget(), {
        allowEmpty: options.allowEmpty === true,
        drainTimeoutMs: 30_000,
        clock: this.#clock,
      });
      this.#discovery.start();
    }
  }

  /**
   * Resolves once the cluster can take requests: at once without a discovery source; with one, when
   * its first answer was applied (or the cluster closed). A source that keeps failing keeps this
   * pending: bound the wait with a timeout of your own if you start on it.
   */
  ready(): Promise<void> {
    return this.#discovery?.ready ?? Promise.resolve();
  }

  /** Every endpoint, eligible or not, in the order added. */
  get endpoints(): readonly Endpoint[] {
    return this.#eligibility.list;
  }

  /** The endpoints the balancer picks from now (every non-draining one in panic mode). */
  get eligibleEndpoints(): readonly Endpoint[] {
    return this.#eligibility.list.filter((endpoint) => this.#eligibility.has(endpoint.id));
  }

  /** True while panic mode balances across every endpoint. */
  get panic(): boolean {
    return this.#eligibility.panic;
  }

  /** Adds a backend at runtime; it ramps up over `slowStartMs`. */
  add(backend: string | BackendConfig): Endpoint {
    const endpoint = this.#add(backend, 'backend', this.#slowStartMs > 0);
    this.#eligibility.rebuild();
    return endpoint;
  }

  /**
   * Stops sending new requests to `id`, waits for its requests in flight (up to `timeoutMs`, default
   * 30 s), then removes it; streams still open at the deadline (an SSE stream read through `fetch()`)
   * are cut. An {@link Cluster.undrain} while it waits cancels the removal.
   */
  async remove(id: string, options: { timeoutMs?: Duration } = {}): Promise<void> {
    const timeoutMs = optionalDuration(options.timeoutMs, 'timeoutMs', 30_000);
    const started = this.#clock.now();
    await this.drain(id, { timeoutMs });
    const endpoint = this.#eligibility.get(id);
    if (endpoint === undefined || !endpoint.draining) return;
    this.#eligibility.remove(endpoint);
    this.#health?.remove(id);
    this.#outliers?.remove(id);
    this.emit('endpoint:removed', { id });
    await closePools([endpoint.pool], Math.max(0, timeoutMs - (this.#clock.now() - started)));
  }

  /**
   * Stops sending new requests to `id` and resolves when its requests in flight have finished, or
   * after `timeoutMs` (default 30 s) even if some have not. The endpoint stays, draining, until
   * removed or {@link Cluster.undrain}ed.
   */
  async drain(id: string, options: { timeoutMs?: Duration } = {}): Promise<void> {
    const endpoint = this.#require(id);
    const timeoutMs = optionalDuration(options.timeoutMs, 'timeoutMs', 30_000);
    if (!endpoint.draining) {
      endpoint.draining = true;
      this.#eligibility.rebuild();
      this.emit('endpoint:draining', { id });
    }
    if (endpoint.inflight === 0) return;
    await new Promise<void>((resolve) => {
      const started = this.#clock.now();
      const check = () => {
        this.#drainTimers.delete(timer);
        if (endpoint.inflight === 0 || this.#clock.now() - started >= timeoutMs || this.#closed) resolve();
        else timer = this.#drainTimer(check, Math.min(50, timeoutMs));
      };
      let timer = this.#drainTimer(check, Math.min(50, timeoutMs));
    });
  }

  /** Puts a drained endpoint back in rotation. */
  undrain(id: string): void {
    const endpoint = this.#require(id);
    if (!endpoint.draining) return;
    endpoint.draining = false;
    this.#eligibility.rebuild();
  }

  /** Changes an endpoint's weight at runtime (0 takes it out of rotation without draining it). */
  setWeight(id: string, weight: number): void {
    const endpoint = this.#require(id);
    endpoint.configuredWeight = optionalNumber(weight, 'weight', 1, { min: 0 });
    this.#eligibility.rebuild();
  }

  /** Picks an eligible endpoint, or undefined when none is left. */
  pick(ctx?: PickContext): Endpoint | undefined {
    return this.#balancer.pick(ctx);
  }

  /**
   * Runs `fn` against a picked endpoint, retrying on others as the retry policy allows. A value with
   * a `status` or `statusCode` (a response) is judged by it: 5xx counts as a failure.
   * @throws McgravityError `ENOUPSTREAM` when no endpoint is eligible
   */
  execute<T>(
    fn: (endpoint: Endpoint, signal: AbortSignal) => Promise<T>,
    options: ExecuteOptions = {},
  ): Promise<T> {
    const tried = new Set<string>();
    const attempt = async (signal: AbortSignal): Promise<T> => {
      const current = this.#attempts.begin(options.key, tried, undefined, undefined);
      let value: T;
      try {
        value = await fn(current.endpoint, signal);
      } catch (error) {
        current.failed(error, signal);
        throw error;
      }
      current.answered(statusOf(value) ?? 200, headerOf(value, 'retry-after'));
      current.end();
      return value;
    };
    return this.#run({
      attempt,
      idempotent: options.idempotent === true,
      signal: options.signal,
      tried,
      excluded: 0,
      pinned: false,
    });
  }

  /**
   * Starts an attempt on a picked endpoint for the caller to carry to its end (the proxy's WebSocket
   * tunnels do): counted in flight, with its breaker permit, until {@link Attempt.end}. Not retried:
   * to try again elsewhere, pass the same `tried` set, to which each pick is added.
   * @throws McgravityError `ENOUPSTREAM` when no endpoint is eligible (or none untried), `ECLOSED` once closed
   */
  begin(options: { key?: string; prefer?: string; pin?: string; tried?: Set<string> } = {}): Attempt {
    if (this.#closed) throw this.#closedReason();
    return this.#attempts.begin(options.key, options.tried ?? new Set(), options.prefer, options.pin);
  }

  /**
   * An HTTP request to a picked endpoint through its pool, undici style: resolves when the response
   * headers arrive, with the body as a stream. The endpoint counts the request in flight until the
   * body ends. Retried on another endpoint as the retry policy allows, before any response byte has
   * reached the caller.
   */
  request(options: ClusterRequestOptions): Promise<ClusterResponse> {
    const call = requestCall(this.#attempts, options);
    return call instanceof TypeError ? Promise.reject(call) : this.#run(call);
  }

  /**
   * An HTTP request to a picked endpoint whose answer is written straight into a Writable, undici
   * `stream()` style: when the final answer's headers arrive, `factory` gets its status, headers and
   * endpoint and returns the Writable (a `ServerResponse`, say), and the body is written into it as it
   * arrives, with backpressure, and ended. No body stream stands in between, which makes this the
   * cheapest way to relay an answer (the proxy's path). Retried on another endpoint as the retry
   * policy allows: an answer that might be retried is held, unread, until the policy decides, and
   * `factory` only ever sees the one that is kept.
   *
   * Resolves once the Writable has finished (its `'close'` after `'finish'`). Rejects when no answer
   * came (as `request()` does), or when either side broke after it started: the upstream (the
   * Writable is destroyed, so a truncated answer never looks whole) or the Writable (closed early, as
   * a client that leaves; the upstream request is aborted), with `EABORTED`. A Writable already
   * destroyed when `factory` returns it aborts the upstream request at once.
   */
  stream(options: ClusterRequestOptions, factory: ClusterStreamFactory): Promise<ClusterStreamResult> {
    return new Promise((resolve, reject) => this.streamInto(options, factory, { resolve, reject }));
  }

  /**
   * {@link stream}, telling `settle` how it ended instead of returning a promise (undici's
   * `dispatch()` to its `stream()`): a caller that keeps one object per request, as the proxy does,
   * makes it the `settle` and spends no promise on the call. `settle` is told exactly once: before this
   * returns for bad options or a closed cluster (and, without a retry policy, for no eligible endpoint).
   */
  streamInto(
    options: ClusterRequestOptions,
    factory: ClusterStreamFactory,
    settle: ClusterStreamSettle,
  ): void {
    const call = streamCall(this.#attempts, options, factory, this.#mightRetry);
    if (call instanceof TypeError) settle.reject(call);
    else if (this.#closed) settle.reject(this.#closedReason());
    else call.runInto(this.#retry, this.#untriedLeft, settle);
  }

  /**
   * WHATWG `fetch` across the cluster: the URL's path and query go to a picked endpoint's origin
   * (a relative URL such as `/items?page=2` works). Retried as the retry policy allows; GET, HEAD,
   * PUT, DELETE… count as idempotent. Unlike `request()`, the endpoint counts the request in flight
   * until the response headers arrive, not until the body is read.
   */
  fetch(input: string | URL | Request, init: ClusterFetchInit = {}): Promise<Response> {
    const call = fetchCall(this.#attempts, input, init);
    return call instanceof TypeError ? Promise.reject(call) : this.#run(call);
  }

  /** Counters, latency percentiles over the recent window, and every endpoint's state. */
  stats(): ClusterStats {
    let inflight = 0;
    const list = this.#eligibility.list;
    for (const endpoint of list) inflight += endpoint.inflight;
    const retry = this.#retry?.stats();
    return {
      name: this.name,
      endpoints: list.map((endpoint) => endpoint.stats(this.#eligibility.has(endpoint.id))),
      eligible: this.#eligibility.size,
      panic: this.#eligibility.panic,
      requests: this.#attempts.requests,
      errors: this.#attempts.errors,
      inflight,
      latency: this.#attempts.latency.summary(),
      retries: retry?.retries ?? 0,
      requeues: retry?.requeues ?? 0,
      retryBudgetExhausted: retry?.budgetExhausted ?? 0,
      ...(this.#discovery === undefined ? {} : { discovery: this.#discovery.stats() }),
    };
  }

  /**
   * Stops health checks, outlier detection and timers, lets requests in flight finish for up to
   * `timeoutMs` (default 10 s), then closes every connection. Leaves no handle open.
   */
  async close(options: { timeoutMs?: Duration } = {}): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const timeoutMs = optionalDuration(options.timeoutMs, 'timeoutMs', 10_000);
    this.#discovery?.close();
    await this.#health?.close();
    await this.#checkDispatcher?.destroy();
    this.#outliers?.close();
    this.#eligibility.close();
    this.#attempts.close();
    for (const timer of this.#drainTimers) this.#clock.clearTimeout(timer);
    this.#drainTimers.clear();
    await closePools(
      this.#eligibility.list.map((endpoint) => endpoint.pool),
      timeoutMs,
    );
  }

  #add(backend: string | BackendConfig, option: string, slowStart: boolean): ManagedEndpoint {
    if (this.#closed) throw this.#closedReason();
    const normalized = normalizeBackend(backend, option);
    if (this.#eligibility.get(normalized.id) !== undefined) {
      throw new TypeError(`${option}: duplicate endpoint id "${normalized.id}" in cluster ${this.name}`);
    }
    const endpoint = new ManagedEndpoint(normalized, {
      pool: this.#poolOptions,
      breaker: this.#breakerOptions,
      clock: this.#clock,
      latencyWindowMs: this.#statsWindowMs,
    });
    this.#eligibility.add(endpoint, slowStart);
    this.#outliers?.add(endpoint.id);
    this.#health?.add(endpoint);
    if (this.#health !== undefined) endpoint.healthy = this.#health.isHealthy(endpoint.id);
    this.emit('endpoint:added', { id: endpoint.id });
    return endpoint;
  }

  /** The cluster as its discovery runner changes it (endpoints found are added without slow start at first). */
  #discoveryTarget(): DiscoveryTarget {
    return {
      name: this.name,
      has: (id) => this.#eligibility.get(id) !== undefined,
      weightOf: (id) => this.#eligibility.get(id)?.configuredWeight,
      add: (backend) => {
        this.#add(backend, 'discovered backend', this.#slowStartMs > 0 && this.#eligibility.list.length > 0);
        this.#eligibility.rebuild();
      },
      remove: (id, timeoutMs) => this.remove(id, { timeoutMs }),
      undrain: (id) => this.undrain(id),
      setWeight: (id, weight) => this.setWeight(id, weight),
      emit: (event: keyof ClusterEvents, info: never) => this.emit(event, info),
    };
  }

  #drainTimer(callback: () => void, ms: number): unknown {
    const timer = this.#clock.setTimeout(callback, ms);
    this.#drainTimers.add(timer);
    return timer;
  }

  #require(id: string): ManagedEndpoint {
    const endpoint = this.#eligibility.get(id);
    if (endpoint === undefined) throw new TypeError(`cluster ${this.name} has no endpoint "${id}"`);
    return endpoint;
  }

  readonly #mightRetry = (head: { statusCode: number; headers: unknown }, idempotent: boolean): boolean =>
    this.#retry?.wouldRetry(head, idempotent) === true;

  readonly #untriedLeft = (tried: ReadonlySet<string>): boolean => this.#eligibility.untriedLeft(tried);

  #run<T>(call: RetryingCall<T>): Promise<T> {
    return this.#closed ? this.#closedError() : withRetries(this.#retry, call, this.#untriedLeft);
  }

  #closedError(): Promise<never> {
    return Promise.reject(this.#closedReason());
  }

  #closedReason(): McgravityError {
    return new McgravityError('ECLOSED', `cluster ${this.name} is closed`);
  }
}

function checkDiscovery(discovery: Discovery | undefined): Discovery | undefined {
  if (discovery === undefined) return undefined;
  if (discovery === null || typeof (discovery as Partial<Discovery>)[Symbol.asyncIterator] !== 'function') {
    throw new TypeError(
      `discovery must be an async iterable of backend lists (dnsDiscovery(), fileDiscovery() or your own), got ${describeValue(discovery)}`,
    );
  }
  return discovery;
}

/** Creates a {@link Cluster}. */
export function createCluster(options: ClusterOptions): Cluster {
  return new Cluster(options);
}
