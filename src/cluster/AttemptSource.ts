/**
 * Where a cluster's attempts come from and report to. `begin()` picks an endpoint not tried yet whose
 * breaker admits the call (its permit goes with the attempt), honouring a preferred endpoint
 * (affinity) and a pinned one (a session's owner); `record()` takes each attempt's outcome into the
 * cluster's counters and latency window and into outlier detection.
 */
import type { Balancer, PickContext } from '../balancer/Balancer.js';
import type { CircuitPermit } from '../breaker/CircuitBreaker.js';
import type { Clock } from '../core/clock.js';
import { DeadlineQueue } from '../core/DeadlineQueue.js';
import { McgravityError } from '../core/errors.js';
import type { OutlierDetector } from '../health/OutlierDetector.js';
import type { LatencyWindow } from '../observe/LatencyWindow.js';
import { Attempt, type AttemptRecorder, type Outcome } from './Attempt.js';
import type { Eligibility } from './Eligibility.js';
import type { ManagedEndpoint } from './ManagedEndpoint.js';

const NO_KEY: PickContext = Object.freeze({});

/** The attempts of one cluster; see the module comment. */
export class AttemptSource implements AttemptRecorder {
  readonly name: string;
  readonly clock: Clock;
  /** Attempts started. */
  requests = 0;
  /** Attempts that failed (errors and 5xx answers). */
  errors = 0;
  readonly latency: LatencyWindow;
  readonly #balancer: Balancer<ManagedEndpoint>;
  readonly #eligibility: Eligibility;
  readonly #outliers: OutlierDetector | undefined;
  /** First-byte timeouts, one queue per duration. */
  readonly #deadlines = new Map<number, DeadlineQueue>();
  /** A first pick with a key reuses this context (pick() is synchronous and keeps no reference). */
  readonly #keyCtx: { key: string } = { key: '' };

  constructor(options: {
    name: string;
    balancer: Balancer<ManagedEndpoint>;
    eligibility: Eligibility;
    outliers: OutlierDetector | undefined;
    latency: LatencyWindow;
    clock: Clock;
  }) {
    this.name = options.name;
    this.#balancer = options.balancer;
    this.#eligibility = options.eligibility;
    this.#outliers = options.outliers;
    this.latency = options.latency;
    this.clock = options.clock;
  }

  coolDown(endpoint: ManagedEndpoint, ms: number): void {
    this.#eligibility.coolDown(endpoint, ms);
  }

  /** The queue of first-byte timeouts of `ms` (precise to the millisecond, one timer for all). */
  deadlines(ms: number): DeadlineQueue {
    let queue = this.#deadlines.get(ms);
    if (queue === undefined) {
      queue = new DeadlineQueue(ms, this.clock);
      this.#deadlines.set(ms, queue);
    }
    return queue;
  }

  /** Stops every timeout timer. */
  close(): void {
    for (const queue of this.#deadlines.values()) queue.close();
  }

  /** Records the outcome of one attempt: latency, counters, outlier detection. */
  record(
    endpoint: ManagedEndpoint,
    outcome: Exclude<Outcome, 'abandoned'>,
    elapsedMs: number,
    now: number,
  ): void {
    if (typeof outcome === 'number') {
      endpoint.observeLatency(elapsedMs, now);
      this.latency.record(elapsedMs, now);
      if (outcome >= 500) {
        endpoint.errors++;
        this.errors++;
      }
      this.#outliers?.report(endpoint.id, outcome);
      return;
    }
    endpoint.errors++;
    this.errors++;
    if (outcome !== 'error') this.#outliers?.report(endpoint.id, outcome);
  }

  /**
   * Picks an endpoint not tried yet whose breaker admits the call, and starts an attempt on it. In
   * panic mode a breaker that refuses does not keep its endpoint out (panic sends to all). The
   * endpoint goes into `tried`; a call's first try may pass none (nothing tried yet) and spare
   * itself the set, which it then makes only if it tries again.
   */
  begin(
    key: string | undefined,
    tried: Set<string> | undefined,
    prefer: string | undefined,
    pin: string | undefined,
  ): Attempt {
    if (pin !== undefined) return this.#pinned(pin, tried);
    const eligibility = this.#eligibility;
    if (prefer !== undefined && tried?.has(prefer) !== true && eligibility.has(prefer)) {
      const preferred = eligibility.get(prefer) as ManagedEndpoint;
      const permit = preferred.breaker?.tryAcquire();
      if (preferred.breaker === undefined || permit !== undefined || eligibility.panic) {
        tried?.add(preferred.id);
        return this.#start(preferred, permit);
      }
    }
    // A first pick reuses one context object (pick() is synchronous and keeps no reference).
    let ctx: PickContext;
    if (tried !== undefined && tried.size > 0)
      ctx = key === undefined ? { exclude: tried } : { key, exclude: tried };
    else if (key === undefined) ctx = NO_KEY;
    else {
      this.#keyCtx.key = key;
      ctx = this.#keyCtx;
    }
    for (;;) {
      const picked = this.#balancer.pick(ctx);
      if (picked === undefined) {
        const count = tried?.size ?? 0;
        throw new McgravityError(
          'ENOUPSTREAM',
          count === 0
            ? `cluster ${this.name} has no eligible endpoint`
            : `cluster ${this.name} has no eligible endpoint left to try (${count} tried)`,
        );
      }
      const breaker = picked.breaker;
      const permit = breaker?.tryAcquire();
      if (breaker === undefined || permit !== undefined || eligibility.panic) {
        tried?.add(picked.id);
        return this.#start(picked, permit);
      }
      // Half-open and probing: try another, this one left out.
      tried ??= new Set();
      tried.add(picked.id);
      ctx = key === undefined ? { exclude: tried } : { key, exclude: tried };
    }
  }

  /** The owner of a session, or why not: gone (404), already tried (no retry elsewhere), breaker open. */
  #pinned(id: string, tried: Set<string> | undefined): Attempt {
    const owner = this.#eligibility.get(id);
    if (owner === undefined || !owner.healthy) {
      throw new McgravityError(
        'ESESSIONGONE',
        `endpoint ${id} of cluster ${this.name} ${owner === undefined ? 'was removed' : 'is down'}`,
      );
    }
    if (tried?.has(id) === true) {
      throw new McgravityError(
        'ENOUPSTREAM',
        `cluster ${this.name}: a pinned request is not retried elsewhere`,
      );
    }
    const permit = owner.breaker?.tryAcquire();
    if (owner.breaker !== undefined && permit === undefined) {
      throw new McgravityError('ECIRCUITOPEN', `the circuit of endpoint ${id} is open`);
    }
    tried?.add(id);
    return this.#start(owner, permit);
  }

  #start(endpoint: ManagedEndpoint, permit: CircuitPermit | undefined): Attempt {
    this.requests++;
    return new Attempt(this, endpoint, permit);
  }
}
