/**
 * Per-method statistics of an MCP client fetch: requests, transport errors, JSON-RPC errors and
 * latency over a recent window, for each method and for each tool (`tools/call:<name>`).
 */
import type { Clock } from '../core/clock.js';
import { type LatencySummary, LatencyWindow } from '../observe/LatencyWindow.js';

/** Statistics of one method, or of one tool (`tools/call:<name>`). */
export interface McpMethodStats {
  readonly requests: number;
  /** Requests that failed in transport: no answer, or an HTTP error status. */
  readonly errors: number;
  /** Answers that were JSON-RPC errors, or tool results with `isError`. */
  readonly rpcErrors: number;
  /** Time to the answer (for SSE, to the event that carries it), over the recent window. */
  readonly latency: LatencySummary;
}

/** The live counters of one method. */
export interface MethodCounters {
  requests: number;
  errors: number;
  rpcErrors: number;
  readonly latency: LatencyWindow;
}

/** Counters per method or tool, made on first use. */
export class MethodStats {
  readonly #windowMs: number;
  readonly #clock: Clock;
  readonly #byKey = new Map<string, MethodCounters>();

  constructor(windowMs: number, clock: Clock) {
    this.#windowMs = windowMs;
    this.#clock = clock;
  }

  /** The counters of `key` (a method, or `tools/call:<name>`). */
  counters(key: string): MethodCounters {
    let counters = this.#byKey.get(key);
    if (counters === undefined) {
      counters = {
        requests: 0,
        errors: 0,
        rpcErrors: 0,
        latency: new LatencyWindow(this.#windowMs, this.#clock),
      };
      this.#byKey.set(key, counters);
    }
    return counters;
  }

  /** Every method's figures now. */
  summary(): Record<string, McpMethodStats> {
    const methods: Record<string, McpMethodStats> = {};
    for (const [key, counters] of this.#byKey) {
      methods[key] = {
        requests: counters.requests,
        errors: counters.errors,
        rpcErrors: counters.rpcErrors,
        latency: counters.latency.summary(),
      };
    }
    return methods;
  }
}
