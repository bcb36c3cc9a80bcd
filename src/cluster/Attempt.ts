/**
 * One try of a request against one endpoint, from the pick to its end. It owns everything the try
 * holds or reports: the endpoint's in-flight count, its pool slot, its circuit-breaker permit, and,
 * once, its outcome (latency sample, counters, outlier detection, breaker, and the cool-down a
 * `Retry-After` asks for). Every way a cluster sends traffic (`execute()`, `request()`, `fetch()`,
 * `stream()`, and the proxy's upgrades) takes one, so each of those is counted and freed the same
 * way, exactly once, whichever path ends it.
 *
 * Two ends, in this order: the outcome (`answered()` when the head arrives, or `failed()`), then the
 * release (`end()`, when the body is done with). `failed()` does both.
 */
import type { CircuitPermit } from '../breaker/CircuitBreaker.js';
import type { Clock } from '../core/clock.js';
import { failureKind, retryAfterMs } from '../core/failures.js';
import {
  type AttemptEndMessage,
  type AttemptStartMessage,
  attemptEndChannel,
  attemptStartChannel,
} from '../observe/diagnostics.js';
import type { ManagedEndpoint } from './ManagedEndpoint.js';

/** A status, a local failure, an unclassified error, or a call the caller abandoned (counts neither way). */
export type Outcome = number | 'connect-failure' | 'reset' | 'timeout' | 'error' | 'abandoned';

/** Where attempts report: the cluster's counters and detectors (one object per cluster). */
export interface AttemptRecorder {
  /** The cluster's name, for diagnostics messages. */
  readonly name: string;
  readonly clock: Clock;
  /** Records the outcome of one attempt; `elapsedMs` is set for an answer (time to its head). */
  record(
    endpoint: ManagedEndpoint,
    outcome: Exclude<Outcome, 'abandoned'>,
    elapsedMs: number,
    now: number,
  ): void;
  /** Takes `endpoint` out of rotation for `ms` (it answered 503 or 429 with a `Retry-After`). */
  coolDown(endpoint: ManagedEndpoint, ms: number): void;
}

/** One try against one endpoint; see the module comment. */
export class Attempt {
  readonly endpoint: ManagedEndpoint;
  /** When the try started, on the recorder's clock. */
  readonly started: number;
  readonly #recorder: AttemptRecorder;
  readonly #permit: CircuitPermit | undefined;
  #pooled = false;
  #tunnel = false;
  #settled = false;
  #ended = false;

  constructor(recorder: AttemptRecorder, endpoint: ManagedEndpoint, permit: CircuitPermit | undefined) {
    this.#recorder = recorder;
    this.endpoint = endpoint;
    this.#permit = permit;
    this.started = recorder.clock.now();
    endpoint.inflight++;
    endpoint.requests++;
    if (attemptStartChannel.hasSubscribers) {
      const message: AttemptStartMessage = {
        attempt: this,
        cluster: recorder.name,
        endpoint: endpoint.id,
        url: endpoint.url,
      };
      attemptStartChannel.publish(message);
    }
  }

  /**
   * Takes a slot in the endpoint's connection pool. When its queue is full, the try ends as failed
   * and `EOVERLOADED` is thrown.
   */
  enterPool(): void {
    try {
      this.endpoint.pool.admit();
    } catch (error) {
      this.failed(error);
      throw error;
    }
    this.#pooled = true;
  }

  /** The try became a tunnel (an upgrade was accepted): counted as one until it ends. */
  openTunnel(): void {
    if (this.#tunnel || this.#ended) return;
    this.#tunnel = true;
    this.endpoint.tunnels++;
  }

  /**
   * The answer's head arrived with `statusCode`: records it. A 503 or 429 with a `Retry-After` cools
   * the endpoint down for that long.
   */
  answered(statusCode: number, retryAfter?: string): void {
    if (this.#settled) return;
    this.#settled = true;
    const now = this.#recorder.clock.now();
    this.#recorder.record(this.endpoint, statusCode, now - this.started, now);
    if (attemptEndChannel.hasSubscribers) this.#publishEnd(now, statusCode, undefined);
    if (statusCode >= 500) this.#permit?.failure();
    else this.#permit?.success();
    if (retryAfter !== undefined && (statusCode === 503 || statusCode === 429)) {
      const ms = retryAfterMs(retryAfter);
      if (ms !== undefined && ms > 0) this.#recorder.coolDown(this.endpoint, ms);
    }
  }

  /**
   * The try failed before an answer, or its work threw: records how, and ends it. An error while
   * `signal` is aborted (the caller gave up) counts neither way.
   */
  failed(error: unknown, signal?: AbortSignal): void {
    if (!this.#settled) {
      this.#settled = true;
      const outcome = outcomeOf(error, signal);
      if (attemptEndChannel.hasSubscribers) this.#publishEnd(this.#recorder.clock.now(), undefined, error);
      if (outcome === 'abandoned') this.#permit?.release();
      else {
        this.#recorder.record(this.endpoint, outcome, 0, this.#recorder.clock.now());
        this.#permit?.failure();
      }
    }
    this.end();
  }

  #publishEnd(now: number, statusCode: number | undefined, error: unknown): void {
    const message: AttemptEndMessage = {
      attempt: this,
      cluster: this.#recorder.name,
      endpoint: this.endpoint.id,
      ...(statusCode === undefined ? { error } : { statusCode }),
      durationMs: now - this.started,
    };
    attemptEndChannel.publish(message);
  }

  /** The endpoint is done with this try (its body ended, broke or was dropped): frees what it held. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.endpoint.inflight--;
    if (this.#tunnel) this.endpoint.tunnels--;
    if (this.#pooled) this.endpoint.pool.finish();
    if (!this.#settled) {
      this.#settled = true;
      this.#permit?.release();
    }
  }
}

function outcomeOf(error: unknown, signal: AbortSignal | undefined): Exclude<Outcome, number> {
  const kind = failureKind(error);
  if (kind !== undefined) return kind; // a per-try timeout aborts the signal too, and is a timeout
  return signal?.aborted === true ? 'abandoned' : 'error';
}
