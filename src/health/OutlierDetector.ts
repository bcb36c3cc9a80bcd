/**
 * Passive health: outlier detection as Envoy does it. Every response and failure of real traffic is
 * reported; an endpoint that fails too many times in a row is ejected (taken out of rotation) at
 * once, without waiting for an active check, for `baseEjectionMs × times ejected` (capped at
 * `maxEjectionMs`), and then returned. For each full `intervalMs` it then stays in rotation, the
 * multiplier decays by one.
 *
 * Triggers, each a count of consecutive results (a result that is not a failure of that kind resets
 * it):
 * - `consecutive5xx`: any 5xx response, or any local-origin failure;
 * - `consecutiveGatewayErrors`: 502, 503, 504, or any local-origin failure;
 * - `consecutiveLocalOriginFailures`: connect failures, resets and timeouts only;
 * - optionally `successRate`: every `intervalMs`, among endpoints with at least `requestVolume`
 *   requests in the interval (and at least `minimumHosts` of them), eject those whose success rate
 *   is below mean − stdevFactor × standard deviation.
 *
 * No more than `maxEjectionPercent` of the endpoints are ejected at once, but always at least one
 * may be (Envoy's rule); endpoints that another mechanism holds out of rotation (an open circuit
 * breaker, see `markUnavailable`) count as ejected there. A passing active health check returns an
 * ejected endpoint at once (`restore`, Envoy's `successful_active_health_check_uneject_host`). Reporting is O(1); the interval sweep O(n).
 */
import { EventEmitter } from 'eventemitter3';
import { type Clock, systemClock } from '../core/clock.js';
import { type Duration, optionalDuration } from '../core/duration.js';
import type { FailureKind } from '../core/failures.js';
import { checkKnownOptions, optionalNumber } from '../core/validate.js';

/** Options of {@link OutlierDetector}. */
export interface OutlierOptions {
  /** Consecutive 5xx (or local failures) that eject; `false` turns it off. @default 5 */
  consecutive5xx?: number | false;
  /** Consecutive 502/503/504 (or local failures) that eject; `false` turns it off. @default 5 */
  consecutiveGatewayErrors?: number | false;
  /** Consecutive connect failures, resets or timeouts that eject; `false` turns it off. @default 5 */
  consecutiveLocalOriginFailures?: number | false;
  /** Period of the success-rate analysis and of the ejection-multiplier decay. @default 10_000 */
  intervalMs?: Duration;
  /** Ejection time of a first ejection; multiplied by the number of ejections in a row. @default 30_000 */
  baseEjectionMs?: Duration;
  /** Longest ejection. @default 300_000 */
  maxEjectionMs?: Duration;
  /** Most endpoints ejected at once, as a percentage; at least one may always be. @default 10 */
  maxEjectionPercent?: number;
  /** Success-rate ejection; off by default. */
  successRate?:
    | {
        /** Endpoints with enough requests needed before the analysis runs. @default 5 */
        minimumHosts?: number;
        /** Requests in the interval an endpoint needs to be judged. @default 100 */
        requestVolume?: number;
        /** Ejects below mean − stdevFactor × stdev. @default 1.9 */
        stdevFactor?: number;
      }
    | false;
  /** Clock for ejection times and the interval. @default systemClock */
  clock?: Clock;
}

/** Why an endpoint was ejected. */
export type EjectionReason =
  | 'consecutive-5xx'
  | 'consecutive-gateway-errors'
  | 'consecutive-local-failures'
  | 'success-rate';

/** Events of {@link OutlierDetector}. */
export interface OutlierEvents {
  'endpoint:ejected': (info: {
    id: string;
    reason: EjectionReason;
    ejectionMs: number;
    ejections: number;
  }) => void;
  'endpoint:restored': (info: { id: string }) => void;
}

/** One result of a call: an HTTP status from the upstream, or a local-origin failure. */
export type CallResult = number | FailureKind;

interface HostState {
  consecutive5xx: number;
  consecutiveGateway: number;
  consecutiveLocal: number;
  ejections: number;
  ejected: boolean;
  /** Held out of rotation by another mechanism (an open breaker): counts as ejected for the cap. */
  unavailable: boolean;
  /** When the endpoint last came back (or the multiplier last decayed). */
  healthySince: number;
  timer: unknown;
  intervalRequests: number;
  intervalSuccesses: number;
}

const KNOWN = [
  'consecutive5xx',
  'consecutiveGatewayErrors',
  'consecutiveLocalOriginFailures',
  'intervalMs',
  'baseEjectionMs',
  'maxEjectionMs',
  'maxEjectionPercent',
  'successRate',
  'clock',
];

function threshold(value: number | false | undefined, option: string): number {
  if (value === false) return 0;
  return optionalNumber(value, option, 5, { min: 1, integer: true });
}

/** Passive outlier detection over a set of endpoint ids. */
export class OutlierDetector extends EventEmitter<OutlierEvents> {
  readonly #consecutive5xx: number;
  readonly #consecutiveGateway: number;
  readonly #consecutiveLocal: number;
  readonly #intervalMs: number;
  readonly #baseEjectionMs: number;
  readonly #maxEjectionMs: number;
  readonly #maxEjectionPercent: number;
  readonly #successRate: { minimumHosts: number; requestVolume: number; stdevFactor: number } | undefined;
  readonly #clock: Clock;
  readonly #hosts = new Map<string, HostState>();
  #ejectedCount = 0;
  /** Hosts unavailable by another mechanism and not ejected. */
  #unavailableCount = 0;
  #intervalTimer: unknown;
  #closed = false;

  constructor(options: OutlierOptions = {}) {
    super();
    checkKnownOptions(options, KNOWN, 'OutlierDetector');
    this.#consecutive5xx = threshold(options.consecutive5xx, 'consecutive5xx');
    this.#consecutiveGateway = threshold(options.consecutiveGatewayErrors, 'consecutiveGatewayErrors');
    this.#consecutiveLocal = threshold(
      options.consecutiveLocalOriginFailures,
      'consecutiveLocalOriginFailures',
    );
    this.#intervalMs = optionalDuration(options.intervalMs, 'intervalMs', 10_000);
    if (this.#intervalMs <= 0)
      throw new RangeError(`intervalMs must be > 0, got ${String(options.intervalMs)}`);
    this.#baseEjectionMs = optionalDuration(options.baseEjectionMs, 'baseEjectionMs', 30_000);
    this.#maxEjectionMs = optionalDuration(options.maxEjectionMs, 'maxEjectionMs', 300_000);
    if (this.#maxEjectionMs < this.#baseEjectionMs) {
      throw new RangeError(
        `maxEjectionMs must be >= baseEjectionMs (${this.#baseEjectionMs}), got ${this.#maxEjectionMs}`,
      );
    }
    this.#maxEjectionPercent = optionalNumber(options.maxEjectionPercent, 'maxEjectionPercent', 10, {
      min: 0,
      max: 100,
    });
    const rate = options.successRate;
    this.#successRate =
      rate === undefined || rate === false
        ? undefined
        : {
            minimumHosts: optionalNumber(rate.minimumHosts, 'successRate.minimumHosts', 5, {
              min: 1,
              integer: true,
            }),
            requestVolume: optionalNumber(rate.requestVolume, 'successRate.requestVolume', 100, {
              min: 1,
              integer: true,
            }),
            stdevFactor: optionalNumber(rate.stdevFactor, 'successRate.stdevFactor', 1.9, { min: 0 }),
          };
    this.#clock = options.clock ?? systemClock;
    this.#intervalTimer = this.#clock.setTimeout(() => this.#sweep(), this.#intervalMs);
  }

  /** Starts tracking an endpoint (idempotent). */
  add(id: string): void {
    if (this.#hosts.has(id)) return;
    this.#hosts.set(id, {
      consecutive5xx: 0,
      consecutiveGateway: 0,
      consecutiveLocal: 0,
      ejections: 0,
      ejected: false,
      unavailable: false,
      healthySince: this.#clock.now(),
      timer: undefined,
      intervalRequests: 0,
      intervalSuccesses: 0,
    });
  }

  /** Stops tracking an endpoint. */
  remove(id: string): void {
    const host = this.#hosts.get(id);
    if (host === undefined) return;
    if (host.ejected) {
      this.#clock.clearTimeout(host.timer);
      this.#ejectedCount--;
    } else if (host.unavailable) {
      this.#unavailableCount--;
    }
    this.#hosts.delete(id);
  }

  /**
   * Notes that another mechanism holds `id` out of rotation (an open circuit breaker), or no longer
   * does: such an endpoint counts as ejected for `maxEjectionPercent`.
   */
  markUnavailable(id: string, unavailable: boolean): void {
    const host = this.#hosts.get(id);
    if (host === undefined || host.unavailable === unavailable) return;
    host.unavailable = unavailable;
    if (!host.ejected) this.#unavailableCount += unavailable ? 1 : -1;
  }

  /** Returns an ejected endpoint now (an active health check passed); its multiplier stays. */
  restore(id: string): void {
    const host = this.#hosts.get(id);
    if (host === undefined || !host.ejected) return;
    this.#clock.clearTimeout(host.timer);
    this.#restore(id, host);
  }

  /** True while the endpoint is ejected. */
  isEjected(id: string): boolean {
    return this.#hosts.get(id)?.ejected === true;
  }

  /** How many endpoints are ejected now. */
  get ejectedCount(): number {
    return this.#ejectedCount;
  }

  /** Times the endpoint has been ejected in a row (the ejection-time multiplier). */
  ejections(id: string): number {
    return this.#hosts.get(id)?.ejections ?? 0;
  }

  /**
   * Reports one result of real traffic to `id`: the HTTP status it answered with, or how the call
   * failed before an answer. Unknown ids are ignored.
   */
  report(id: string, result: CallResult): void {
    const host = this.#hosts.get(id);
    if (host === undefined || this.#closed) return;
    const local = typeof result === 'string';
    const status = local ? 0 : result;
    const is5xx = local || status >= 500;
    const isGateway = local || status === 502 || status === 503 || status === 504;
    host.intervalRequests++;
    if (!is5xx) host.intervalSuccesses++;
    host.consecutive5xx = is5xx ? host.consecutive5xx + 1 : 0;
    host.consecutiveGateway = isGateway ? host.consecutiveGateway + 1 : 0;
    host.consecutiveLocal = local ? host.consecutiveLocal + 1 : 0;
    if (host.ejected) return;
    if (this.#consecutiveLocal > 0 && host.consecutiveLocal >= this.#consecutiveLocal) {
      this.#eject(id, host, 'consecutive-local-failures');
    } else if (this.#consecutiveGateway > 0 && host.consecutiveGateway >= this.#consecutiveGateway) {
      this.#eject(id, host, 'consecutive-gateway-errors');
    } else if (this.#consecutive5xx > 0 && host.consecutive5xx >= this.#consecutive5xx) {
      this.#eject(id, host, 'consecutive-5xx');
    }
  }

  /** Stops the interval and all ejection timers; ejected endpoints stay ejected. */
  close(): void {
    this.#closed = true;
    this.#clock.clearTimeout(this.#intervalTimer);
    for (const host of this.#hosts.values()) this.#clock.clearTimeout(host.timer);
  }

  #mayEject(): boolean {
    const out = this.#ejectedCount + this.#unavailableCount;
    return out === 0 || (100 * out) / this.#hosts.size < this.#maxEjectionPercent;
  }

  #eject(id: string, host: HostState, reason: EjectionReason): void {
    if (!this.#mayEject()) return;
    host.ejections++;
    host.ejected = true;
    host.consecutive5xx = 0;
    host.consecutiveGateway = 0;
    host.consecutiveLocal = 0;
    this.#ejectedCount++;
    if (host.unavailable) this.#unavailableCount--;
    const ejectionMs = Math.min(this.#maxEjectionMs, this.#baseEjectionMs * host.ejections);
    host.timer = this.#clock.setTimeout(() => this.#restore(id, host), ejectionMs);
    this.emit('endpoint:ejected', { id, reason, ejectionMs, ejections: host.ejections });
  }

  #restore(id: string, host: HostState): void {
    if (!host.ejected || this.#hosts.get(id) !== host) return;
    host.ejected = false;
    host.healthySince = this.#clock.now();
    host.timer = undefined;
    this.#ejectedCount--;
    if (host.unavailable) this.#unavailableCount++;
    this.emit('endpoint:restored', { id });
  }

  #sweep(): void {
    if (this.#closed) return;
    if (this.#successRate !== undefined) this.#successRateEjections(this.#successRate);
    const now = this.#clock.now();
    for (const host of this.#hosts.values()) {
      // The multiplier decays by one for each full interval the endpoint stays in rotation.
      if (!host.ejected && host.ejections > 0 && now - host.healthySince >= this.#intervalMs) {
        host.ejections--;
        host.healthySince = now;
      }
      host.intervalRequests = 0;
      host.intervalSuccesses = 0;
    }
    this.#intervalTimer = this.#clock.setTimeout(() => this.#sweep(), this.#intervalMs);
  }

  #successRateEjections(rule: { minimumHosts: number; requestVolume: number; stdevFactor: number }): void {
    const rates: [string, HostState, number][] = [];
    for (const [id, host] of this.#hosts) {
      if (host.intervalRequests >= rule.requestVolume)
        rates.push([id, host, host.intervalSuccesses / host.intervalRequests]);
    }
    if (rates.length < rule.minimumHosts) return;
    const mean = rates.reduce((sum, [, , rate]) => sum + rate, 0) / rates.length;
    const variance = rates.reduce((sum, [, , rate]) => sum + (rate - mean) ** 2, 0) / rates.length;
    const floor = mean - rule.stdevFactor * Math.sqrt(variance);
    for (const [id, host, rate] of rates) {
      if (rate < floor && !host.ejected) this.#eject(id, host, 'success-rate');
    }
  }
}
