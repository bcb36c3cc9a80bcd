/**
 * Active health checking: probes each endpoint on its own schedule and keeps a healthy / unhealthy
 * verdict with HAProxy's rise and fall: `unhealthyThreshold` failed checks in a row take a healthy
 * endpoint down, `healthyThreshold` passed checks in a row bring it back.
 *
 * A check is an HTTP request to the endpoint's origin + `path` that must answer within `timeoutMs`
 * with a status in `expectStatus` and, when set, headers matching `expectHeaders` and a body
 * matching `expectBody` (nginx's `match` block), or any `check(endpoint, signal)` function: a TCP
 * connect ({@link tcpCheck}), an MCP ping, a database query.
 *
 * Scheduling: each endpoint's first check falls at a random point of the first interval, so checks
 * spread out instead of arriving together; each later one starts `intervalMs` (± `jitter`) after the
 * previous one ended, so checks of one endpoint never overlap. A check still running at `timeoutMs`
 * is aborted and counts as failed. `close()` stops every timer and aborts running checks.
 */
import { EventEmitter } from 'eventemitter3';
import type { Dispatcher } from 'undici';
import { type Clock, type RandomSource, systemClock, systemRandom } from '../core/clock.js';
import { type Duration, optionalDuration } from '../core/duration.js';
import { McgravityError } from '../core/errors.js';
import type { TextMatch } from '../core/match.js';
import { checkKnownOptions, optionalFunction, optionalNumber } from '../core/validate.js';
import { describeFailure, httpCheck, type StatusMatcher } from './checks.js';

export { type StatusMatcher, tcpCheck } from './checks.js';

/** What a health check needs to know of an endpoint. */
export interface CheckTarget {
  readonly id: string;
  readonly url: string;
}

/** A custom check: resolve `true` or nothing for healthy; `false` or a rejection for unhealthy. */
export type HealthCheckFunction = (
  endpoint: CheckTarget,
  signal: AbortSignal,
) => Promise<
  // biome-ignore lint/suspicious/noConfusingVoidType: an async function that returns nothing must fit.
  boolean | undefined | void
>;

/** Options of {@link HealthMonitor}. */
export interface HealthCheckOptions {
  /** Path requested on each endpoint's origin. @default '/health' */
  path?: string;
  /** HTTP method of the check. @default 'GET' */
  method?: 'GET' | 'HEAD';
  /** Extra request headers, e.g. a Host or an authorization. */
  headers?: Record<string, string>;
  /** Time between checks of one endpoint. @default 10_000 */
  intervalMs?: Duration;
  /** Time a check may take before it is aborted and counted as failed. @default 5_000 */
  timeoutMs?: Duration;
  /** Random spread of each interval, as a fraction of it (0 to 1). @default 0.1 */
  jitter?: number;
  /** Passed checks in a row that bring an unhealthy endpoint back (rise). @default 2 */
  healthyThreshold?: number;
  /** Failed checks in a row that take a healthy endpoint down (fall). @default 3 */
  unhealthyThreshold?: number;
  /** Accepted statuses. @default '2xx' */
  expectStatus?: StatusMatcher | readonly StatusMatcher[];
  /** The body must contain this string or match this pattern (first 64 KiB). */
  expectBody?: TextMatch;
  /** Response headers that must be present with these values (string: equal; RegExp: match, any flags). */
  expectHeaders?: Record<string, TextMatch>;
  /** A custom check instead of the HTTP one. */
  check?: HealthCheckFunction;
  /** Whether an endpoint starts healthy (HAProxy) or must pass its first checks first (nginx `mandatory`). @default true */
  startHealthy?: boolean;
  /** undici dispatcher for the HTTP checks. @default undici's global dispatcher */
  dispatcher?: Dispatcher;
  /** Clock for the schedule and timeouts. @default systemClock */
  clock?: Clock;
  /** Random source for the spread and jitter. @default systemRandom */
  random?: RandomSource;
}

/** The result of one check. */
export interface CheckResult {
  readonly id: string;
  readonly ok: boolean;
  /** Why it failed: `timeout`, `connect-failure`, `status 503`, `body mismatch`… */
  readonly reason?: string;
  readonly durationMs: number;
}

/** An endpoint's health as the monitor sees it. */
export interface EndpointHealth {
  readonly healthy: boolean;
  readonly consecutiveSuccesses: number;
  readonly consecutiveFailures: number;
  readonly lastCheck?: CheckResult;
}

/** Events of {@link HealthMonitor}. */
export interface HealthMonitorEvents {
  'endpoint:up': (info: { id: string }) => void;
  'endpoint:down': (info: { id: string; reason: string }) => void;
  check: (result: CheckResult) => void;
}

interface TargetState {
  readonly target: CheckTarget;
  healthy: boolean;
  successes: number;
  failures: number;
  lastCheck: CheckResult | undefined;
  timer: unknown;
  running: Promise<CheckResult> | undefined;
  controller: AbortController | undefined;
}

const KNOWN = [
  'path',
  'method',
  'headers',
  'intervalMs',
  'timeoutMs',
  'jitter',
  'healthyThreshold',
  'unhealthyThreshold',
  'expectStatus',
  'expectBody',
  'expectHeaders',
  'check',
  'startHealthy',
  'dispatcher',
  'clock',
  'random',
];

/** Active health checks over a set of endpoints. */
export class HealthMonitor extends EventEmitter<HealthMonitorEvents> {
  readonly #intervalMs: number;
  readonly #timeoutMs: number;
  readonly #jitter: number;
  readonly #rise: number;
  readonly #fall: number;
  readonly #check: HealthCheckFunction;
  readonly #startHealthy: boolean;
  readonly #clock: Clock;
  readonly #random: RandomSource;
  readonly #targets = new Map<string, TargetState>();
  #closed = false;

  constructor(options: HealthCheckOptions = {}) {
    super();
    checkKnownOptions(options, KNOWN, 'HealthMonitor');
    this.#intervalMs = optionalDuration(options.intervalMs, 'intervalMs', 10_000);
    if (this.#intervalMs <= 0)
      throw new RangeError(`intervalMs must be > 0, got ${String(options.intervalMs)}`);
    this.#timeoutMs = optionalDuration(options.timeoutMs, 'timeoutMs', 5_000);
    if (this.#timeoutMs <= 0) throw new RangeError(`timeoutMs must be > 0, got ${String(options.timeoutMs)}`);
    this.#jitter = optionalNumber(options.jitter, 'jitter', 0.1, { min: 0, max: 1 });
    this.#rise = optionalNumber(options.healthyThreshold, 'healthyThreshold', 2, { min: 1, integer: true });
    this.#fall = optionalNumber(options.unhealthyThreshold, 'unhealthyThreshold', 3, {
      min: 1,
      integer: true,
    });
    // Checked even with a custom check, so that a mistake in them is never silent.
    const http = httpCheck(options);
    this.#check = optionalFunction(options.check, 'check', http);
    this.#startHealthy = options.startHealthy ?? true;
    this.#clock = options.clock ?? systemClock;
    this.#random = optionalFunction(options.random, 'random', systemRandom);
  }

  /** Starts checking an endpoint; its first check falls at a random point of the first interval. */
  add(target: CheckTarget): void {
    if (this.#closed) throw new McgravityError('ECLOSED', 'HealthMonitor is closed');
    if (this.#targets.has(target.id)) return;
    const state: TargetState = {
      target: { id: target.id, url: target.url },
      healthy: this.#startHealthy,
      successes: 0,
      failures: 0,
      lastCheck: undefined,
      timer: undefined,
      running: undefined,
      controller: undefined,
    };
    this.#targets.set(target.id, state);
    this.#schedule(state, this.#random() * this.#intervalMs);
  }

  /** Stops checking an endpoint, aborting a check in progress. */
  remove(id: string): void {
    const state = this.#targets.get(id);
    if (state === undefined) return;
    this.#targets.delete(id);
    this.#clock.clearTimeout(state.timer);
    state.controller?.abort(new McgravityError('ECLOSED', `endpoint ${id} was removed`));
  }

  /** True when the endpoint is known and healthy. */
  isHealthy(id: string): boolean {
    return this.#targets.get(id)?.healthy === true;
  }

  /** The endpoint's health, or undefined when it is not monitored. */
  health(id: string): EndpointHealth | undefined {
    const state = this.#targets.get(id);
    if (state === undefined) return undefined;
    return {
      healthy: state.healthy,
      consecutiveSuccesses: state.successes,
      consecutiveFailures: state.failures,
      ...(state.lastCheck === undefined ? {} : { lastCheck: state.lastCheck }),
    };
  }

  /** Checks an endpoint now (or joins the check already running) and returns the result. */
  checkNow(id: string): Promise<CheckResult> {
    const state = this.#targets.get(id);
    if (state === undefined) return Promise.reject(new TypeError(`endpoint ${id} is not monitored`));
    return state.running ?? this.#run(state);
  }

  /** Stops all checks and timers; resolves when running checks have settled. */
  async close(): Promise<void> {
    this.#closed = true;
    const running: Promise<unknown>[] = [];
    for (const state of this.#targets.values()) {
      this.#clock.clearTimeout(state.timer);
      state.controller?.abort(new McgravityError('ECLOSED', 'HealthMonitor closed'));
      if (state.running) running.push(state.running);
    }
    this.#targets.clear();
    await Promise.allSettled(running);
  }

  #schedule(state: TargetState, delayMs: number): void {
    state.timer = this.#clock.setTimeout(() => {
      state.timer = undefined;
      if (state.running === undefined) void this.#run(state);
    }, delayMs);
  }

  #run(state: TargetState): Promise<CheckResult> {
    this.#clock.clearTimeout(state.timer);
    state.timer = undefined;
    const controller = new AbortController();
    state.controller = controller;
    const started = this.#clock.now();
    const id = state.target.id;
    const timer = this.#clock.setTimeout(
      () =>
        controller.abort(
          new McgravityError('EUPSTREAMTIMEOUT', `health check timed out after ${this.#timeoutMs} ms`),
        ),
      this.#timeoutMs,
    );
    const running = (async (): Promise<CheckResult> => {
      let reason: string | undefined;
      try {
        // Race the abort, so that a check ignoring its signal still ends at its timeout or on close.
        const verdict = await Promise.race([
          this.#check(state.target, controller.signal),
          rejectOnAbort(controller.signal),
        ]);
        if (controller.signal.aborted) reason = this.#abortReason(controller.signal);
        else if (verdict === false) reason = 'check returned false';
      } catch (error) {
        reason = controller.signal.aborted ? this.#abortReason(controller.signal) : describeFailure(error);
      } finally {
        this.#clock.clearTimeout(timer);
      }
      const result: CheckResult = {
        id,
        ok: reason === undefined,
        ...(reason === undefined ? {} : { reason }),
        durationMs: this.#clock.now() - started,
      };
      state.running = undefined;
      state.controller = undefined;
      if (this.#targets.get(id) !== state) return result; // removed or closed meanwhile
      this.#record(state, result);
      const spread = 1 + this.#jitter * (2 * this.#random() - 1);
      this.#schedule(state, this.#intervalMs * spread);
      return result;
    })();
    state.running = running;
    return running;
  }

  #abortReason(signal: AbortSignal): string {
    const reason: unknown = signal.reason;
    return reason instanceof McgravityError && reason.code === 'EUPSTREAMTIMEOUT' ? 'timeout' : 'aborted';
  }

  #record(state: TargetState, result: CheckResult): void {
    state.lastCheck = result;
    if (result.ok) {
      state.successes++;
      state.failures = 0;
      if (!state.healthy && state.successes >= this.#rise) {
        state.healthy = true;
        this.emit('endpoint:up', { id: result.id });
      }
    } else {
      state.failures++;
      state.successes = 0;
      if (state.healthy && state.failures >= this.#fall) {
        state.healthy = false;
        this.emit('endpoint:down', { id: result.id, reason: result.reason ?? 'failed' });
      }
    }
    this.emit('check', result); // after the verdict: a listener reads the state the check left
  }
}

function rejectOnAbort(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}
