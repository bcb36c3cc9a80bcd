/**
 * The waiting line of a rate limiter with `overflow: 'queue'`: requests the limit refused wait first
 * in, first out (at most `maxQueue` per key, each at most `queueTimeoutMs`), and are let through from
 * the head as the limit allows, the next ask timed by the store's `retryAfterMs`. A newcomer for a key
 * that has a line joins its end, so nobody jumps the queue. One timer per waiting key, one per waiter.
 */
import type { Clock } from '../core/clock.js';
import type { RateLimitDecision } from './rules.js';

interface Waiter {
  readonly keys: readonly string[];
  readonly cost: number;
  readonly resolve: (decision: RateLimitDecision) => void;
  timer: unknown;
  settled: boolean;
}

interface Line {
  readonly waiters: Waiter[];
  timer: unknown;
  pumping: boolean;
}

/** What the queue needs of its limiter. */
export interface OverflowQueueOptions {
  readonly maxQueue: number;
  readonly queueTimeoutMs: number;
  readonly clock: Clock;
  /** Asks the store for `cost` under the limiter's rules. */
  readonly ask: (keys: readonly string[], cost: number) => Promise<RateLimitDecision>;
  /** A refusal the queue makes itself (full, timed out, closed). */
  readonly refuse: (resetMs: number, retryAfterMs: number) => RateLimitDecision;
}

/** Refused requests waiting their turn, per key; see the module comment. */
export class OverflowQueue {
  readonly #options: OverflowQueueOptions;
  readonly #lines = new Map<string, Line>();
  #queued = 0;
  #closed = false;

  constructor(options: OverflowQueueOptions) {
    this.#options = options;
  }

  /** Requests that have waited in line since construction. */
  get queued(): number {
    return this.#queued;
  }

  /** True while requests for `lineKey` wait (a newcomer must join them). */
  waiting(lineKey: string): boolean {
    const line = this.#lines.get(lineKey);
    return line !== undefined && line.waiters.length > 0;
  }

  /**
   * Queues a request; resolves with the decision that lets it through, or with a refusal when the
   * line is full, the wait times out or the queue closes. `firstWaitMs`: when to ask again, for the
   * first waiter of a line.
   */
  enqueue(
    lineKey: string,
    keys: readonly string[],
    cost: number,
    firstWaitMs?: number,
  ): Promise<RateLimitDecision> {
    const { maxQueue, queueTimeoutMs, clock, refuse } = this.#options;
    let line = this.#lines.get(lineKey);
    if (line === undefined) {
      line = { waiters: [], timer: undefined, pumping: false };
      this.#lines.set(lineKey, line);
    }
    if (line.waiters.length >= maxQueue || this.#closed) {
      if (line.waiters.length === 0) this.#lines.delete(lineKey);
      return Promise.resolve(refuse(firstWaitMs ?? 0, firstWaitMs ?? queueTimeoutMs));
    }
    this.#queued++;
    const owner = line;
    return new Promise<RateLimitDecision>((resolve) => {
      const waiter: Waiter = { keys, cost, resolve, timer: undefined, settled: false };
      waiter.timer = clock.setTimeout(() => {
        const at = owner.waiters.indexOf(waiter);
        if (at !== -1) owner.waiters.splice(at, 1);
        this.#settle(waiter, refuse(queueTimeoutMs, queueTimeoutMs));
        this.#tidy(lineKey, owner);
      }, queueTimeoutMs);
      owner.waiters.push(waiter);
      if (firstWaitMs !== undefined && owner.waiters.length === 1)
        this.#schedule(lineKey, owner, firstWaitMs);
    });
  }

  /** Refuses everyone still waiting and stops every timer. */
  close(): void {
    this.#closed = true;
    const { clock, refuse } = this.#options;
    for (const [lineKey, line] of this.#lines) {
      clock.clearTimeout(line.timer);
      for (const waiter of line.waiters)
        this.#settle(waiter, refuse(Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY));
      this.#lines.delete(lineKey);
    }
  }

  #schedule(lineKey: string, line: Line, delayMs: number): void {
    const clock = this.#options.clock;
    clock.clearTimeout(line.timer);
    line.timer = clock.setTimeout(() => void this.#pump(lineKey, line), Math.max(1, delayMs));
  }

  /** Lets waiters through from the head while the limit allows; waits again when it does not. */
  async #pump(lineKey: string, line: Line): Promise<void> {
    if (line.pumping) return;
    line.pumping = true;
    try {
      while (line.waiters.length > 0 && !this.#closed) {
        const head = line.waiters[0] as Waiter;
        const decision = await this.#options.ask(head.keys, head.cost);
        if (head.settled) continue; // timed out while we asked
        if (!decision.allowed) {
          const wait = Number.isFinite(decision.retryAfterMs)
            ? decision.retryAfterMs
            : this.#options.queueTimeoutMs;
          this.#schedule(lineKey, line, wait);
          return;
        }
        line.waiters.shift();
        this.#settle(head, decision);
      }
      this.#tidy(lineKey, line);
    } finally {
      line.pumping = false;
    }
  }

  #settle(waiter: Waiter, decision: RateLimitDecision): void {
    if (waiter.settled) return;
    waiter.settled = true;
    this.#options.clock.clearTimeout(waiter.timer);
    waiter.resolve(decision);
  }

  #tidy(lineKey: string, line: Line): void {
    if (line.waiters.length > 0 || this.#lines.get(lineKey) !== line) return;
    this.#options.clock.clearTimeout(line.timer);
    this.#lines.delete(lineKey);
  }
}
