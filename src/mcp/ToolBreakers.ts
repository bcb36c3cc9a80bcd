/**
 * Circuit breakers per replica and tool, for `createMcpFetch`: one tool failing on one replica (a
 * broken dependency of that tool there) is avoided there, while its other tools, and the same tool
 * elsewhere, keep their traffic.
 *
 * A call takes its permits before it is sent: on the session's owner when it is pinned (refused:
 * the call is answered at once), or on every replica that has a breaker for the tool when it is
 * balanced (replicas that refuse are excluded from the pick, the others keep a permit). When the
 * answer names the replica that served it, that replica's permit reports the outcome and the rest
 * are released. So a half-open breaker admits exactly `halfOpenMaxRequests` probes at once, on every
 * path.
 */
import {
  CircuitBreaker,
  type CircuitBreakerOptions,
  type CircuitPermit,
  type CircuitState,
} from '../breaker/CircuitBreaker.js';
import type { Clock } from '../core/clock.js';

/** A breaker's state change, for the fetch's `tool:circuit` event. */
export type ToolCircuitListener = (info: { endpointId: string; tool: string; state: CircuitState }) => void;

/** The permits one call holds. */
export class ToolAdmission {
  readonly #permits: Map<string, CircuitPermit>;
  readonly #breakers: ToolBreakers;
  readonly #tool: string;
  /** Replicas whose breaker refused: not to be picked. */
  readonly exclude: Set<string> | undefined;

  constructor(
    breakers: ToolBreakers,
    tool: string,
    permits: Map<string, CircuitPermit>,
    exclude: Set<string> | undefined,
  ) {
    this.#breakers = breakers;
    this.#tool = tool;
    this.#permits = permits;
    this.exclude = exclude;
  }

  /**
   * The permit for the replica that served the call (taken now if it had no breaker yet); every other
   * permit is released.
   */
  servedBy(endpointId: string): CircuitPermit | undefined {
    let served: CircuitPermit | undefined;
    for (const [id, permit] of this.#permits) {
      if (id === endpointId) served = permit;
      else permit.release();
    }
    this.#permits.clear();
    return served ?? this.#breakers.breaker(endpointId, this.#tool).tryAcquire();
  }

  /** The call failed without naming a replica: every permit is given back. */
  releaseAll(): void {
    for (const permit of this.#permits.values()) permit.release();
    this.#permits.clear();
  }
}

/** Every per-replica, per-tool breaker of one fetch. */
export class ToolBreakers {
  readonly #options: CircuitBreakerOptions;
  readonly #clock: Clock;
  readonly #onState: ToolCircuitListener;
  readonly #byKey = new Map<string, { endpointId: string; tool: string; breaker: CircuitBreaker }>();

  constructor(options: CircuitBreakerOptions, clock: Clock, onState: ToolCircuitListener) {
    new CircuitBreaker(options); // checks the options now, not at the first call
    this.#options = options;
    this.#clock = clock;
    this.#onState = onState;
  }

  /** A permit on the session's owner, or undefined when its breaker for `tool` refuses. */
  admitPinned(endpointId: string, tool: string): ToolAdmission | undefined {
    const permit = this.breaker(endpointId, tool).tryAcquire();
    if (permit === undefined) return undefined;
    return new ToolAdmission(this, tool, new Map([[endpointId, permit]]), undefined);
  }

  /** Permits on every replica with a breaker for `tool`; those that refuse are excluded. */
  admitBalanced(tool: string): ToolAdmission {
    const permits = new Map<string, CircuitPermit>();
    let exclude: Set<string> | undefined;
    for (const entry of this.#byKey.values()) {
      if (entry.tool !== tool) continue;
      const permit = entry.breaker.tryAcquire();
      if (permit !== undefined) permits.set(entry.endpointId, permit);
      else {
        exclude ??= new Set();
        exclude.add(entry.endpointId);
      }
    }
    return new ToolAdmission(this, tool, permits, exclude);
  }

  /** Every breaker that is not closed. */
  notClosed(): { endpointId: string; tool: string; state: CircuitState }[] {
    const result: { endpointId: string; tool: string; state: CircuitState }[] = [];
    for (const { endpointId, tool, breaker } of this.#byKey.values()) {
      const state = breaker.state;
      if (state !== 'closed') result.push({ endpointId, tool, state });
    }
    return result;
  }

  /** The breaker of `tool` on `endpointId`, made on first use. */
  breaker(endpointId: string, tool: string): CircuitBreaker {
    const key = `${endpointId}\u0000${tool}`;
    let entry = this.#byKey.get(key);
    if (entry === undefined) {
      const breaker = new CircuitBreaker({
        ...this.#options,
        clock: this.#clock,
        name: `${endpointId}/${tool}`,
      });
      breaker.on('circuit:state', (state) => this.#onState({ endpointId, tool, state }));
      entry = { endpointId, tool, breaker };
      this.#byKey.set(key, entry);
    }
    return entry.breaker;
  }
}
