/**
 * A Cluster: one named set of backends and everything that decides where a request goes and what
 * happens when it fails. It composes the primitives: a balancer (least-request by default, wrapped in
 * priority tiers), active health checks, outlier detection, a circuit breaker and a connection pool
 * per endpoint, and a retry policy with a retry budget.
 *
 * Eligibility: an endpoint takes traffic when it is healthy (active checks), not ejected (outlier
 * detection), not draining, and its breaker is not open. When fewer than `panicThreshold` percent
 * of the endpoints are eligible, the cluster balances across all of them instead (Envoy's panic
 * mode): with most of a cluster marked down, the likelier story is a broken health signal, and
 * sending everything to the few survivors would take them down too. Endpoints of priority > 0 are
 * backups (see PriorityBalancer). An endpoint that becomes eligible again ramps its weight up over
 * `slowStartMs` from 10 % (Envoy's slow start), so a cold backend is not flooded.
 *
 * Requests: `execute(fn)` runs any call against a picked endpoint; `request()` is undici-style and
 * streams the body; `fetch()` is WHATWG fetch. All three retry on a different endpoint as the retry
 * policy allows, report every outcome to outlier detection and the breaker, and keep in-flight counts
 * and latency for the balancers.
 */
import type { Readable } from 'node:stream';
import { EventEmitter } from 'eventemitter3';
import { type Dispatcher, fetch as undiciFetch } from 'undici';
import type { Balancer, BalancerName, PickContext } from '../balancer/Balancer.js';
import { createBalancer } from '../balancer/createBalancer.js';
import { PriorityBalancer } from '../balancer/PriorityBalancer.js';
import type { CircuitBreakerOptions } from '../breaker/CircuitBreaker.js';
import { type Clock, type RandomSource, systemClock, systemRandom } from '../core/clock.js';
import { optionalDuration } from '../core/duration.js';
import { type BackendConfig, type Endpoint, normalizeBackend } from '../core/endpoint.js';
import { isMcgravityError, McgravityError } from '../core/errors.js';
import { failureKind, statusOf } from '../core/failures.js';
import { neverAborted } from '../core/signals.js';
import { checkKnownOptions, describeValue, optionalFunction, optionalNumber } from '../core/validate.js';
import { type HealthCheckOptions, HealthMonitor } from '../health/HealthMonitor.js';
import { OutlierDetector, type OutlierOptions } from '../health/OutlierDetector.js';
import { type Pool, type PoolOptions, resolvePoolOptions } from '../pool/Pool.js';
import { RetryBudget } from '../retry/RetryBudget.js';
import { isIdempotentMethod, type RetryOptions, RetryPolicy } from '../retry/RetryPolicy.js';
import { type LatencySummary, LatencyWindow } from './LatencyWindow.js';
import { type EndpointStats, ManagedEndpoint } from './ManagedEndpoint.js';
import {
  type ClusterStreamFactory,
  type ClusterStreamResult,
  type RelayHost,
  ResponseRelay,
} from './ResponseRelay.js';

/** Options of {@link createCluster}. */
export interface ClusterOptions {
  /** Name in events, metrics and errors. @default 'default' */
  name?: string;
  /** The backends: URLs or configurations. */
  backends: readonly (string | BackendConfig)[];
  /** A built-in algorithm's name or your own balancer. @default 'least-request' */
  balancer?: BalancerName | Balancer;
  /** Active health checks; off unless given. */
  health?: HealthCheckOptions | false;
  /** Passive outlier detection. @default on, with OutlierDetector's defaults */
  outlierDetection?: OutlierOptions | false;
  /** One breaker per endpoint. @default on, with CircuitBreaker's defaults */
  circuitBreaker?: Omit<CircuitBreakerOptions, 'clock' | 'name'> | false;
  /** Retries on another endpoint. @default on, with RetryPolicy's defaults (3 attempts) */
  retry?: Omit<RetryOptions, 'clock' | 'random' | 'onDiscard'> | false;
  /** Connection pool per endpoint. */
  pool?: PoolOptions;
  /** Ramp-up time of an endpoint that (re)joins; 0 turns slow start off. @default 0 */
  slowStartMs?: number | string;
  /** Below this percentage of eligible endpoints, balance across all of them. 0 turns panic mode off. @default 50 */
  panicThreshold?: number;
  /** Window of the latency percentiles and request rates in `stats()`. @default 60_000 */
  statsWindowMs?: number | string;
  /** Time source for every timer in the cluster. @default systemClock */
  clock?: Clock;
  /** Random source for the balancer and retry jitter. @default systemRandom */
  random?: RandomSource;
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
   * Time to the response headers, per attempt, enforced by undici itself (no timer or signal of
   * ours): a late answer fails as a `timeout`, which the retry policy may retry elsewhere.
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
  readonly retryBudgetExhausted: number;
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
}

const KNOWN = [
  'name',
  'backends',
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
];

const SLOW_START_MIN = 0.1;

const NO_KEY: PickContext = Object.freeze({});

/** Stands for "no signal": passing none to undici saves it an abort listener per request. */
const NO_SIGNAL = neverAborted;

/** One call's attempt function and what its retries need to know. */
interface RetryingCall<T> {
  readonly attempt: (signal: AbortSignal) => Promise<T>;
  readonly idempotent: boolean;
  readonly signal: AbortSignal | undefined;
  readonly tried: ReadonlySet<string>;
  readonly pin: string | undefined;
}

/** A status, a local failure, an unclassified error, or a call the caller abandoned (counts neither way). */
type Outcome = number | 'connect-failure' | 'reset' | 'timeout' | 'error' | 'abandoned';

/** A cluster of backends; see the module comment. */
export class Cluster extends EventEmitter<ClusterEvents> {
  readonly name: string;
  readonly #balancer: Balancer<ManagedEndpoint>;
  readonly #tiered: boolean;
  readonly #health: HealthMonitor | undefined;
  readonly #outliers: OutlierDetector | undefined;
  readonly #breakerOptions: CircuitBreakerOptions | false;
  readonly #retry: RetryPolicy | undefined;
  readonly #poolOptions: PoolOptions;
  readonly #slowStartMs: number;
  readonly #panicThreshold: number;
  readonly #statsWindowMs: number;
  readonly #clock: Clock;
  readonly #endpoints = new Map<string, ManagedEndpoint>();
  readonly #latency: LatencyWindow;
  readonly #timers = new Set<unknown>();
  #list: ManagedEndpoint[] = [];
  readonly #keyCtx: { key: string } = { key: '' };
  #eligible = new Set<string>();
  #panic = false;
  #slowStartTimer: unknown;
  #requests = 0;
  #errors = 0;
  #closed = false;

  constructor(options: ClusterOptions) {
    super();
    if (options === null || typeof options !== 'object') throw new TypeError('createCluster needs options');
    checkKnownOptions(options, KNOWN, 'Cluster');
    this.name = options.name ?? 'default';
    if (typeof this.name !== 'string' || this.name === '')
      throw new TypeError('name must be a non-empty string');
    if (!Array.isArray(options.backends))
      throw new TypeError('backends must be an array of URLs or backend objects');
    this.#clock = options.clock ?? systemClock;
    const random = optionalFunction(options.random, 'random', systemRandom);
    const balancer = options.balancer ?? 'least-request';
    if (typeof balancer === 'string') {
      const innerOptions =
        balancer === 'round-robin' || balancer === 'weighted-round-robin' || balancer === 'least-connections'
          ? {}
          : { random };
      createBalancer(balancer, innerOptions); // refuses an unknown name now
      this.#balancer = new PriorityBalancer<ManagedEndpoint>({ inner: balancer, innerOptions, random });
      this.#tiered = true;
    } else if (
      balancer !== null &&
      typeof balancer === 'object' &&
      typeof balancer.pick === 'function' &&
      typeof balancer.update === 'function'
    ) {
      this.#balancer = balancer as unknown as Balancer<ManagedEndpoint>;
      this.#tiered = false;
    } else {
      throw new TypeError(`balancer must be an algorithm name or a Balancer, got ${describeValue(balancer)}`);
    }
    this.#poolOptions = options.pool ?? {};
    resolvePoolOptions(this.#poolOptions);
    this.#breakerOptions = options.circuitBreaker === false ? false : { ...(options.circuitBreaker ?? {}) };
    this.#slowStartMs = optionalDuration(options.slowStartMs, 'slowStartMs', 0);
    this.#panicThreshold = optionalNumber(options.panicThreshold, 'panicThreshold', 50, { min: 0, max: 100 });
    this.#statsWindowMs = optionalDuration(options.statsWindowMs, 'statsWindowMs', 60_000);
    this.#latency = new LatencyWindow(this.#statsWindowMs, this.#clock);
    this.#retry =
      options.retry === false
        ? undefined
        : new RetryPolicy({
            ...(options.retry ?? {}),
            budget: options.retry?.budget ?? new RetryBudget(),
            clock: this.#clock,
            random,
            onDiscard: discardBody,
          });

    if (options.outlierDetection !== false) {
      this.#outliers = new OutlierDetector({ ...(options.outlierDetection ?? {}), clock: this.#clock });
      this.#outliers.on('endpoint:ejected', ({ id, reason, ejectionMs }) =>
        this.#mark(
          id,
          (e) => (e.ejected = true),
          () => this.emit('endpoint:ejected', { id, reason, ejectionMs }),
        ),
      );
      this.#outliers.on('endpoint:restored', ({ id }) =>
        this.#mark(
          id,
          (e) => (e.ejected = false),
          () => this.emit('endpoint:restored', { id }),
        ),
      );
    }
    if (options.health !== undefined && options.health !== false) {
      this.#health = new HealthMonitor({
        ...options.health,
        clock: options.health.clock ?? this.#clock,
        random,
      });
      this.#health.on('endpoint:down', ({ id, reason }) =>
        this.#mark(
          id,
          (e) => (e.healthy = false),
          () => this.emit('endpoint:down', { id, reason }),
        ),
      );
      this.#health.on('endpoint:up', ({ id }) =>
        this.#mark(
          id,
          (e) => (e.healthy = true),
          () => this.emit('endpoint:up', { id }),
        ),
      );
    }
    options.backends.forEach((backend, i) => {
      this.#add(backend, `backends[${i}]`, false);
    });
    this.#rebuild();
  }

  /** Every endpoint, eligible or not, in the order added. */
  get endpoints(): readonly Endpoint[] {
    return this.#list;
  }

  /** The endpoints the balancer picks from now (every non-draining one in panic mode). */
  get eligibleEndpoints(): readonly Endpoint[] {
    return this.#list.filter((endpoint) => this.#eligible.has(endpoint.id));
  }

  /** True while panic mode balances across every endpoint. */
  get panic(): boolean {
    return this.#panic;
  }

  /** Adds a backend at runtime; it ramps up over `slowStartMs`. */
  add(backend: string | BackendConfig): Endpoint {
    const endpoint = this.#add(backend, 'backend', this.#slowStartMs > 0);
    this.#rebuild();
    return endpoint;
  }

  /**
   * Stops sending new requests to `id`, waits for its requests in flight (up to `timeoutMs`, default
   * 30 s), then removes it; streams still open at the deadline (an SSE stream read through `fetch()`)
   * are cut.
   */
  async remove(id: string, options: { timeoutMs?: number | string } = {}): Promise<void> {
    const timeoutMs = optionalDuration(options.timeoutMs, 'timeoutMs', 30_000);
    const started = this.#clock.now();
    await this.drain(id, { timeoutMs });
    const endpoint = this.#endpoints.get(id);
    if (endpoint === undefined) return;
    this.#endpoints.delete(id);
    this.#list = this.#list.filter((e) => e !== endpoint);
    this.#health?.remove(id);
    this.#outliers?.remove(id);
    this.#rebuild();
    this.emit('endpoint:removed', { id });
    await closePools([endpoint.pool], Math.max(0, timeoutMs - (this.#clock.now() - started)));
  }

  /**
   * Stops sending new requests to `id` and resolves when its requests in flight have finished, or
   * after `timeoutMs` (default 30 s) even if some have not. The endpoint stays, draining, until
   * removed or {@link Cluster.undrain}ed.
   */
  async drain(id: string, options: { timeoutMs?: number | string } = {}): Promise<void> {
    const endpoint = this.#require(id);
    const timeoutMs = optionalDuration(options.timeoutMs, 'timeoutMs', 30_000);
    if (!endpoint.draining) {
      endpoint.draining = true;
      this.#rebuild();
      this.emit('endpoint:draining', { id });
    }
    if (endpoint.inflight === 0) return;
    await new Promise<void>((resolve) => {
      const started = this.#clock.now();
      const check = () => {
        this.#timers.delete(timer);
        if (endpoint.inflight === 0 || this.#clock.now() - started >= timeoutMs || this.#closed) resolve();
        else timer = this.#timer(check, Math.min(50, timeoutMs));
      };
      let timer = this.#timer(check, Math.min(50, timeoutMs));
    });
  }

  /** Puts a drained endpoint back in rotation. */
  undrain(id: string): void {
    const endpoint = this.#require(id);
    if (!endpoint.draining) return;
    endpoint.draining = false;
    this.#rebuild();
  }

  /** Changes an endpoint's weight at runtime (0 takes it out of rotation without draining it). */
  setWeight(id: string, weight: number): void {
    const endpoint = this.#require(id);
    endpoint.configuredWeight = optionalNumber(weight, 'weight', 1, { min: 0 });
    this.#rebuild();
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
      const endpoint = this.#acquire(options.key, tried);
      const started = this.#clock.now();
      try {
        const value = await fn(endpoint, signal);
        this.#settle(endpoint, statusOf(value) ?? 200, started);
        return value;
      } catch (error) {
        this.#settle(endpoint, outcomeOf(error, signal), started);
        throw error;
      } finally {
        endpoint.inflight--;
      }
    };
    return this.#withRetries(attempt, options.idempotent === true, options.signal, tried);
  }

  /**
   * An HTTP request to a picked endpoint through its pool, undici style: resolves when the response
   * headers arrive, with the body as a stream. The endpoint counts the request in flight until the
   * body ends. Retried on another endpoint as the retry policy allows, before any response byte has
   * reached the caller.
   */
  request(options: ClusterRequestOptions): Promise<ClusterResponse> {
    const shape = requestShape(options, 'request');
    if (shape instanceof TypeError) return Promise.reject(shape);
    const { method, body, idempotent } = shape;
    const tried = new Set<string>(options.exclude);
    const attempt = async (signal: AbortSignal): Promise<ClusterResponse> => {
      const endpoint = this.#acquire(options.key, tried, options.prefer, options.pin);
      const started = this.#clock.now();
      this.#admitToPool(endpoint, started, signal);
      let response: Dispatcher.ResponseData;
      try {
        response = await endpoint.pool.dispatcher.request({
          method: method as Dispatcher.HttpMethod,
          path: options.path,
          headers: options.headers ?? {},
          body,
          ...(signal === NO_SIGNAL ? {} : { signal }),
          ...(options.headersTimeoutMs === undefined ? {} : { headersTimeout: options.headersTimeoutMs }),
        });
      } catch (error) {
        this.#report.failed(endpoint, error, started, signal);
        throw error;
      }
      this.#settle(endpoint, response.statusCode, started);
      // In flight until the body is done with, whichever way it ends.
      // (undici's body emits 'close' after its end, an error or a destroy.) The error listener keeps
      // an upstream that breaks mid-body, or a body destroyed unread, from crashing the process;
      // whoever reads the body still sees the error.
      const responseBody = response.body;
      responseBody.once('close', () => this.#report.released(endpoint));
      responseBody.on('error', ignoreError);
      return { statusCode: response.statusCode, headers: response.headers, body: response.body, endpoint };
    };
    return this.#withRetries(attempt, idempotent, options.signal, tried, options.pin);
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
    const shape = requestShape(options, 'stream');
    if (shape instanceof TypeError) return Promise.reject(shape);
    if (typeof factory !== 'function')
      return Promise.reject(new TypeError('stream() needs a factory function'));
    const { method, body, idempotent } = shape;
    const tried = new Set<string>(options.exclude);
    const dispatchOptions: Dispatcher.DispatchOptions = {
      method: method as Dispatcher.HttpMethod,
      path: options.path,
      headers: options.headers ?? {},
      body,
    };
    if (options.headersTimeoutMs !== undefined) dispatchOptions.headersTimeout = options.headersTimeoutMs;
    const attempt = (signal: AbortSignal): Promise<ResponseRelay> =>
      new Promise<ResponseRelay>((resolve, reject) => {
        const endpoint = this.#acquire(options.key, tried, options.prefer, options.pin);
        const started = this.#clock.now();
        try {
          this.#admitToPool(endpoint, started, signal);
        } catch (error) {
          reject(error);
          return;
        }
        const relay = new ResponseRelay(
          this.#report,
          endpoint,
          started,
          factory,
          idempotent,
          signal === NO_SIGNAL ? undefined : signal,
          resolve,
          reject,
        );
        endpoint.pool.dispatcher.dispatch(dispatchOptions, relay);
      });
    return this.#withRetries(attempt, idempotent, options.signal, tried, options.pin).then(acceptRelay);
  }

  /**
   * WHATWG `fetch` across the cluster: the URL's path and query go to a picked endpoint's origin
   * (a relative URL such as `/items?page=2` works). Retried as the retry policy allows; GET, HEAD,
   * PUT, DELETE… count as idempotent. Unlike `request()`, the endpoint counts the request in flight
   * until the response headers arrive, not until the body is read.
   */
  fetch(input: string | URL | Request, init: ClusterFetchInit = {}): Promise<Response> {
    let path: string;
    let request: Request | undefined;
    try {
      const url =
        input instanceof Request ? new URL(input.url) : new URL(String(input), 'http://cluster.invalid');
      path = url.pathname + url.search;
      request = input instanceof Request ? input : undefined;
    } catch {
      return Promise.reject(new TypeError(`fetch() needs a URL or a path, got ${describeValue(input)}`));
    }
    const method = (init.method ?? request?.method ?? 'GET').toUpperCase();
    const body = init.body ?? request?.body ?? null;
    const replayable =
      body === null ||
      typeof body === 'string' ||
      body instanceof Uint8Array ||
      body instanceof ArrayBuffer ||
      body instanceof URLSearchParams;
    const idempotent = replayable && (init.idempotent ?? isIdempotentMethod(method));
    const tried = new Set<string>(init.exclude);
    const { key, prefer, pin, exclude: _exclude, idempotent: _idempotent, ...fetchInit } = init;
    const attempt = async (signal: AbortSignal): Promise<Response> => {
      const endpoint = this.#acquire(key, tried, prefer, pin);
      const started = this.#clock.now();
      const requestInit = {
        ...(request === undefined ? {} : { headers: request.headers, method: request.method }),
        ...fetchInit,
        method,
        body,
        signal,
        dispatcher: endpoint.pool.dispatcher,
        ...(body !== null && !replayable ? { duplex: 'half' } : {}),
      };
      this.#admitToPool(endpoint, started, signal);
      let response: Response;
      try {
        response = (await undiciFetch(endpoint.origin + path, requestInit as never)) as unknown as Response;
      } catch (error) {
        this.#report.failed(endpoint, error, started, signal);
        throw error;
      }
      this.#report.released(endpoint); // counted until the headers, not the body (see above)
      this.#settle(endpoint, response.status, started);
      served.set(response, endpoint);
      return response;
    };
    return this.#withRetries(attempt, idempotent, init.signal ?? request?.signal ?? undefined, tried, pin);
  }

  /** Counters, latency percentiles over the recent window, and every endpoint's state. */
  stats(): ClusterStats {
    let inflight = 0;
    for (const endpoint of this.#list) inflight += endpoint.inflight;
    const retry = this.#retry?.stats();
    return {
      name: this.name,
      endpoints: this.#list.map((endpoint) => endpoint.stats(this.#eligible.has(endpoint.id))),
      eligible: this.#eligible.size,
      panic: this.#panic,
      requests: this.#requests,
      errors: this.#errors,
      inflight,
      latency: this.#latency.summary(),
      retries: retry?.retries ?? 0,
      retryBudgetExhausted: retry?.budgetExhausted ?? 0,
    };
  }

  /**
   * Stops health checks, outlier detection and timers, lets requests in flight finish for up to
   * `timeoutMs` (default 10 s), then closes every connection. Leaves no handle open.
   */
  async close(options: { timeoutMs?: number | string } = {}): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const timeoutMs = optionalDuration(options.timeoutMs, 'timeoutMs', 10_000);
    await this.#health?.close();
    this.#outliers?.close();
    for (const timer of this.#timers) this.#clock.clearTimeout(timer);
    this.#timers.clear();
    this.#clock.clearTimeout(this.#slowStartTimer);
    await closePools(
      this.#list.map((endpoint) => endpoint.pool),
      timeoutMs,
    );
  }

  #add(backend: string | BackendConfig, option: string, slowStart: boolean): ManagedEndpoint {
    if (this.#closed) throw new McgravityError('ECLOSED', `cluster ${this.name} is closed`);
    const normalized = normalizeBackend(backend, option);
    if (this.#endpoints.has(normalized.id)) {
      throw new TypeError(`${option}: duplicate endpoint id "${normalized.id}" in cluster ${this.name}`);
    }
    const endpoint = new ManagedEndpoint(normalized, {
      pool: this.#poolOptions,
      breaker: this.#breakerOptions,
      clock: this.#clock,
      latencyWindowMs: this.#statsWindowMs,
    });
    if (slowStart) endpoint.slowStartSince = this.#clock.now();
    this.#watchBreaker(endpoint);
    this.#endpoints.set(endpoint.id, endpoint);
    this.#list = [...this.#list, endpoint];
    this.#outliers?.add(endpoint.id);
    this.#health?.add(endpoint);
    if (this.#health !== undefined) endpoint.healthy = this.#health.isHealthy(endpoint.id);
    this.emit('endpoint:added', { id: endpoint.id });
    return endpoint;
  }

  #watchBreaker(endpoint: ManagedEndpoint): void {
    const breaker = endpoint.breaker;
    if (breaker === undefined) return;
    const id = endpoint.id;
    breaker.on('circuit:open', ({ openMs }) => {
      this.#rebuild();
      this.emit('circuit:open', { id });
      // Open to half-open happens on a read after openMs: read it then, so the endpoint returns.
      const timer = this.#timer(() => {
        this.#timers.delete(timer);
        this.#rebuild();
      }, openMs);
    });
    breaker.on('circuit:half-open', () => this.emit('circuit:half-open', { id }));
    breaker.on('circuit:close', () => {
      this.#rebuild();
      this.emit('circuit:close', { id });
    });
  }

  /** Applies a state change to a known endpoint, rebuilds the eligible set, then announces it. */
  #mark(id: string, apply: (endpoint: ManagedEndpoint) => unknown, announce: () => void): void {
    const endpoint = this.#endpoints.get(id);
    if (endpoint === undefined) return;
    apply(endpoint);
    this.#rebuild();
    announce();
  }

  #timer(callback: () => void, ms: number): unknown {
    const timer = this.#clock.setTimeout(callback, ms);
    this.#timers.add(timer);
    return timer;
  }

  #require(id: string): ManagedEndpoint {
    const endpoint = this.#endpoints.get(id);
    if (endpoint === undefined) throw new TypeError(`cluster ${this.name} has no endpoint "${id}"`);
    return endpoint;
  }

  /** What requests report back: one object for the cluster, so a request allocates no callbacks. */
  readonly #report: RelayHost = {
    answered: (endpoint, statusCode, started) => this.#settle(endpoint, statusCode, started),
    failed: (endpoint, error, started, signal) => {
      endpoint.inflight--;
      endpoint.pool.finish();
      this.#settle(endpoint, outcomeOf(error, signal), started);
    },
    released: (endpoint) => {
      endpoint.inflight--;
      endpoint.pool.finish();
    },
    mightRetry: (head, idempotent) => this.#retry?.wouldRetry(head, idempotent) === true,
  };

  /**
   * Counts the request in the endpoint's pool, or, when its queue is full, undoes the pick and
   * throws EOVERLOADED.
   */
  #admitToPool(endpoint: ManagedEndpoint, started: number, signal: AbortSignal): void {
    try {
      endpoint.pool.admit();
    } catch (error) {
      endpoint.inflight--;
      this.#settle(endpoint, outcomeOf(error, signal), started);
      throw error;
    }
  }

  /** Recomputes the eligible set, panic mode and slow-start weights, and hands them to the balancer. */
  #rebuild(): void {
    if (this.#closed) return;
    const now = this.#clock.now();
    const candidates: ManagedEndpoint[] = [];
    const eligible: ManagedEndpoint[] = [];
    let ramping = false;
    for (const endpoint of this.#list) {
      if (endpoint.draining) continue;
      candidates.push(endpoint);
      const ok = endpoint.healthy && !endpoint.ejected && endpoint.circuitAdmits;
      if (ok) {
        if (!this.#eligible.has(endpoint.id) && this.#slowStartMs > 0 && this.#eligible.size > 0) {
          endpoint.slowStartSince ??= now;
        }
        eligible.push(endpoint);
      } else {
        endpoint.slowStartSince = undefined;
      }
      let factor = 1;
      if (endpoint.slowStartSince !== undefined) {
        const elapsed = now - endpoint.slowStartSince;
        if (elapsed >= this.#slowStartMs) endpoint.slowStartSince = undefined;
        else {
          factor = Math.max(SLOW_START_MIN, elapsed / this.#slowStartMs);
          ramping = true;
        }
      }
      endpoint.setEffectiveWeight(endpoint.configuredWeight * factor);
    }
    const panic =
      this.#panicThreshold > 0 &&
      candidates.length > 0 &&
      eligible.length * 100 < this.#panicThreshold * candidates.length;
    if (panic !== this.#panic) {
      this.#panic = panic;
      this.emit('panic', { active: panic, eligible: eligible.length, total: candidates.length });
    }
    const chosen = panic ? candidates : eligible;
    if (this.#tiered) (this.#balancer as PriorityBalancer<ManagedEndpoint>).update(chosen, candidates);
    else this.#balancer.update(chosen);
    const before = this.#eligible;
    this.#eligible = new Set(chosen.map((endpoint) => endpoint.id));
    if (before.size !== this.#eligible.size || [...before].some((id) => !this.#eligible.has(id))) {
      this.emit('membership', { eligible: this.#eligible.size, total: candidates.length });
    }
    this.#clock.clearTimeout(this.#slowStartTimer);
    this.#slowStartTimer = ramping
      ? this.#clock.setTimeout(() => this.#rebuild(), Math.max(10, this.#slowStartMs / 20))
      : undefined;
  }

  /** Picks an endpoint not tried yet whose breaker admits the call, and counts it in flight. */
  #acquire(key: string | undefined, tried: Set<string>, prefer?: string, pin?: string): ManagedEndpoint {
    if (pin !== undefined) return this.#acquirePinned(pin, tried);
    if (prefer !== undefined && !tried.has(prefer) && this.#eligible.has(prefer)) {
      const preferred = this.#endpoints.get(prefer);
      if (preferred !== undefined && (preferred.breaker === undefined || preferred.breaker.tryAcquire())) {
        tried.add(preferred.id);
        return this.#admit(preferred);
      }
    }
    // A first pick reuses one context object (pick() is synchronous and keeps no reference).
    let ctx: PickContext;
    if (tried.size > 0) ctx = key === undefined ? { exclude: tried } : { key, exclude: tried };
    else if (key === undefined) ctx = NO_KEY;
    else {
      this.#keyCtx.key = key;
      ctx = this.#keyCtx;
    }
    for (;;) {
      const picked = this.#balancer.pick(ctx) as ManagedEndpoint | undefined;
      if (picked === undefined) {
        throw new McgravityError(
          'ENOUPSTREAM',
          tried.size === 0
            ? `cluster ${this.name} has no eligible endpoint`
            : `cluster ${this.name} has no eligible endpoint left to try (${tried.size} tried)`,
        );
      }
      tried.add(picked.id);
      if (picked.breaker !== undefined && !picked.breaker.tryAcquire()) {
        ctx = key === undefined ? { exclude: tried } : { key, exclude: tried }; // half-open and probing: try another
        continue;
      }
      return this.#admit(picked);
    }
  }

  /** The owner of a session, or why not: gone (404), already tried (no retry elsewhere), breaker open. */
  #acquirePinned(id: string, tried: Set<string>): ManagedEndpoint {
    const owner = this.#endpoints.get(id);
    if (owner === undefined || !owner.healthy) {
      throw new McgravityError(
        'ESESSIONGONE',
        `endpoint ${id} of cluster ${this.name} ${owner === undefined ? 'was removed' : 'is down'}`,
      );
    }
    if (tried.has(id)) {
      throw new McgravityError(
        'ENOUPSTREAM',
        `cluster ${this.name}: a pinned request is not retried elsewhere`,
      );
    }
    if (owner.breaker !== undefined && !owner.breaker.tryAcquire()) {
      throw new McgravityError('ECIRCUITOPEN', `the circuit of endpoint ${id} is open`);
    }
    tried.add(id);
    return this.#admit(owner);
  }

  #admit(endpoint: ManagedEndpoint): ManagedEndpoint {
    endpoint.inflight++;
    endpoint.requests++;
    this.#requests++;
    return endpoint;
  }

  /** Records the outcome of one attempt: latency, counters, outlier detection, breaker. */
  #settle(endpoint: ManagedEndpoint, outcome: Outcome, started: number): void {
    if (outcome === 'abandoned') {
      endpoint.breaker?.release();
      return;
    }
    const failed = typeof outcome !== 'number' || outcome >= 500;
    if (typeof outcome === 'number') {
      const now = this.#clock.now();
      const elapsed = now - started;
      endpoint.observeLatency(elapsed, now);
      this.#latency.record(elapsed, now);
    }
    if (failed) {
      endpoint.errors++;
      this.#errors++;
    }
    if (outcome !== 'error') this.#outliers?.report(endpoint.id, outcome);
    if (endpoint.breaker !== undefined) {
      if (failed) endpoint.breaker.onFailure();
      else endpoint.breaker.onSuccess();
    }
  }

  /** True when a retry would find an eligible endpoint not tried yet (never for a pinned request). */
  #untriedLeft(tried: ReadonlySet<string>, pin: string | undefined): boolean {
    if (pin !== undefined) return false;
    for (const id of this.#eligible) if (!tried.has(id)) return true;
    return false;
  }

  #withRetries<T>(
    attempt: (signal: AbortSignal) => Promise<T>,
    idempotent: boolean,
    signal: AbortSignal | undefined,
    tried: ReadonlySet<string>,
    pin?: string,
  ): Promise<T> {
    if (this.#closed) return Promise.reject(new McgravityError('ECLOSED', `cluster ${this.name} is closed`));
    const retry = this.#retry;
    if (retry === undefined) return attempt(signal ?? NO_SIGNAL);
    const call: RetryingCall<T> = { attempt, idempotent, signal, tried, pin };
    if (retry.perTryTimeoutMs > 0) return this.#retrying(retry, undefined, call);
    // Fast path: the first attempt runs outside the retry machinery, which only a failure (or a
    // retryable status) enters. The request still counts in the retry budget's share.
    const budget = retry.budget;
    budget?.begin();
    return attempt(signal ?? NO_SIGNAL).then(
      (value) => {
        if (!retry.wouldRetry(value, idempotent)) {
          budget?.end();
          return value;
        }
        return this.#retrying(retry, { value }, call).finally(() => budget?.end());
      },
      (error: unknown) => this.#retrying<T>(retry, { error }, call).finally(() => budget?.end()),
    );
  }

  /**
   * The retry machinery, entered after a first attempt that failed (or before any, with a per-try
   * timeout). Retries stop when no endpoint is left to try; a retry that still finds none (a race)
   * surfaces the failure that made it retry (a refused connection, 502), not the empty cluster (503).
   */
  #retrying<T>(
    retry: RetryPolicy,
    first: { readonly value: T } | { readonly error: unknown } | undefined,
    call: RetryingCall<T>,
  ): Promise<T> {
    let lastFailure =
      first !== undefined && 'error' in first && !isMcgravityError(first.error, 'ENOUPSTREAM')
        ? first.error
        : undefined;
    const again = ({ signal }: { signal: AbortSignal }): Promise<T> =>
      call.attempt(signal).catch((error: unknown) => {
        if (!isMcgravityError(error, 'ENOUPSTREAM')) lastFailure = error;
        throw error;
      });
    const options = {
      idempotent: call.idempotent,
      canRetry: () => this.#untriedLeft(call.tried, call.pin),
      ...(call.signal === undefined ? {} : { signal: call.signal }),
    };
    const run = first === undefined ? retry.execute(again, options) : retry.resume(first, again, options);
    return run.catch((error: unknown) => {
      throw isMcgravityError(error, 'ENOUPSTREAM') && lastFailure !== undefined ? lastFailure : error;
    });
  }
}

function ignoreError(): void {}

/** Method, body and idempotency of a request() or stream() call, or the TypeError its options earn. */
function requestShape(
  options: ClusterRequestOptions,
  caller: string,
): { method: string; body: string | Uint8Array | Readable | null; idempotent: boolean } | TypeError {
  if (
    options === null ||
    typeof options !== 'object' ||
    typeof options.path !== 'string' ||
    !options.path.startsWith('/')
  ) {
    return new TypeError(`${caller}() needs a path starting with "/"`);
  }
  const method = (options.method ?? 'GET').toUpperCase();
  const body = options.body ?? null;
  const replayable = body === null || typeof body === 'string' || body instanceof Uint8Array;
  return { method, body, idempotent: replayable && (options.idempotent ?? isIdempotentMethod(method)) };
}

function acceptRelay(relay: ResponseRelay): Promise<ClusterStreamResult> {
  return relay.accept();
}

/** Closes pools gracefully, destroying them (cutting what is still open) after `timeoutMs`. */
async function closePools(pools: readonly Pool[], timeoutMs: number): Promise<void> {
  let deadline: NodeJS.Timeout | undefined;
  const overdue = new Promise<'overdue'>((resolve) => {
    deadline = setTimeout(() => resolve('overdue'), timeoutMs);
    deadline.unref();
  });
  const graceful = Promise.all(pools.map((pool) => pool.close())).then(() => 'closed' as const);
  const result = await Promise.race([graceful, overdue]);
  clearTimeout(deadline);
  if (result === 'overdue') await Promise.all(pools.map((pool) => pool.destroy()));
}

const served = new WeakMap<Response, Endpoint>();

/** The endpoint that served a response of {@link Cluster.fetch}, if it came from one. */
export function servedBy(response: Response): Endpoint | undefined {
  return served.get(response);
}

function outcomeOf(error: unknown, signal: AbortSignal): Outcome {
  const kind = failureKind(error);
  if (kind !== undefined) return kind; // a per-try timeout aborts the signal too, and is a timeout
  return signal.aborted ? 'abandoned' : 'error';
}

/** Releases a response dropped for a retry: drains an undici body or cancels a fetch body. */
function discardBody(value: unknown): void {
  if (value instanceof ResponseRelay) {
    value.discard();
    return;
  }
  const body = (value as { body?: unknown })?.body;
  if (body === null || typeof body !== 'object') return;
  if (typeof (body as { dump?: unknown }).dump === 'function') {
    void (body as { dump(): Promise<void> }).dump().catch(() => {});
  } else if (typeof (body as { cancel?: unknown }).cancel === 'function') {
    void (body as { cancel(): Promise<void> }).cancel().catch(() => {});
  }
}

/** Creates a {@link Cluster}. */
export function createCluster(options: ClusterOptions): Cluster {
  return new Cluster(options);
}
