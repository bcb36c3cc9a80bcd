/**
 * Service discovery: where a cluster's backends come from when they are not a fixed list. A source
 * is an async iterable of backend lists; each value it yields is the whole set as the source sees it
 * now (not a change), or an `Error` when a lookup failed and the cluster should keep what it has.
 * The cluster (cluster/DiscoveryRunner.ts) turns each list into adds, drains and weight changes.
 *
 * Built in: DNS (`dnsDiscovery`: A, AAAA, SRV) and a watched file (`fileDiscovery`). Anything else
 * (Consul, etcd, the Kubernetes API) is a few lines of an async generator.
 *
 * This file also holds {@link Poller}, the iterator both built-in sources use: look up, yield, wait
 * (the TTL, or until woken), look up again; `return()` cancels a wait at once, so closing a cluster
 * never waits out a TTL.
 */
import type { Clock } from '../core/clock.js';
import type { BackendConfig } from '../core/endpoint.js';

/** One value of a {@link Discovery}: every backend as the source sees them now, or why it cannot tell. */
export type DiscoveryResult = readonly (string | BackendConfig)[] | Error;

/**
 * A source of backends for a cluster: an async iterable whose every value is the complete backend
 * list (URLs or {@link BackendConfig}s), or an `Error` when a lookup failed (the cluster keeps its
 * last good set and reports the error). Iteration may go on forever; the cluster calls `return()`
 * on its iterator when it closes. An iterator that throws is started again after a back-off.
 *
 * @example
 * // Backends from your own registry, polled every 10 s.
 * const registry: Discovery = {
 *   async *[Symbol.asyncIterator]() {
 *     for (;;) {
 *       yield await fetchInstances().catch((error) => error);
 *       await setTimeout(10_000);
 *     }
 *   },
 * };
 * createCluster({ name: 'api', discovery: registry });
 */
export interface Discovery extends AsyncIterable<DiscoveryResult> {
  /** Said in events, logs and stats, e.g. `dns A api.internal`. */
  readonly description?: string;
}

/** One look-up of a {@link Poller}: what to yield, and when to look again. */
export interface PollResult {
  readonly value: DiscoveryResult;
  /** Milliseconds until the next look-up (a TTL, or a back-off after a failure). */
  readonly nextMs: number;
  /** Nothing changed since the last value: wait and look again without yielding. */
  readonly unchanged?: boolean;
}

/**
 * The iterator of a polling source: the first `next()` looks up at once, each later one after the
 * delay the previous look-up asked for, or sooner when {@link Poller.wake} is called. `return()`
 * ends it at once, settling a pending `next()` as done, and calls `onReturn` (to cancel queries,
 * close watchers).
 */
export class Poller implements AsyncIterator<DiscoveryResult, undefined> {
  readonly #lookUp: () => Promise<PollResult>;
  readonly #clock: Clock;
  readonly #onReturn: () => void;
  #first = true;
  #delayMs = 0;
  #closed = false;
  #woken = false;
  #timer: unknown;
  #endWait: (() => void) | undefined;

  constructor(lookUp: () => Promise<PollResult>, clock: Clock, onReturn: () => void = () => {}) {
    this.#lookUp = lookUp;
    this.#clock = clock;
    this.#onReturn = onReturn;
  }

  async next(): Promise<IteratorResult<DiscoveryResult, undefined>> {
    for (;;) {
      if (!this.#first) await this.#wait();
      this.#first = false;
      if (this.#closed) return { value: undefined, done: true };
      const { value, nextMs, unchanged } = await this.#lookUp();
      if (this.#closed) return { value: undefined, done: true };
      this.#delayMs = nextMs;
      if (unchanged !== true) return { value, done: false };
    }
  }

  async return(): Promise<IteratorResult<DiscoveryResult, undefined>> {
    if (!this.#closed) {
      this.#closed = true;
      this.#endWait?.();
      this.#onReturn();
    }
    return { value: undefined, done: true };
  }

  /** Ends the current wait now (a watched file changed); a wake during a look-up skips the next wait. */
  wake(): void {
    this.#woken = true;
    this.#endWait?.();
  }

  #wait(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    if (this.#woken) {
      this.#woken = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      this.#endWait = () => {
        this.#clock.clearTimeout(this.#timer);
        this.#endWait = undefined;
        this.#woken = false;
        resolve();
      };
      this.#timer = this.#clock.setTimeout(() => this.#endWait?.(), this.#delayMs);
    });
  }
}
