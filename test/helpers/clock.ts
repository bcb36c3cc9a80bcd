import type { Clock } from '../../src/core/clock.js';

interface Timer {
  readonly at: number;
  readonly seq: number;
  readonly callback: () => void;
}

/** A clock that moves only when told: timers fire in time order inside {@link ManualClock.advance}. */
export class ManualClock implements Clock {
  #now: number;
  #seq = 0;
  #timers = new Map<number, Timer>();

  constructor(start = 0) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(callback: () => void, ms: number): unknown {
    const seq = ++this.#seq;
    this.#timers.set(seq, { at: this.#now + Math.max(0, ms), seq, callback });
    return seq;
  }

  clearTimeout(handle: unknown): void {
    this.#timers.delete(handle as number);
  }

  /** Timers waiting to fire. */
  get pending(): number {
    return this.#timers.size;
  }

  /** Moves time forward by `ms`, firing every timer that falls due, in order. */
  advance(ms: number): void {
    const until = this.#now + ms;
    for (let next = this.#nextDue(until); next !== undefined; next = this.#nextDue(until)) this.#fire(next);
    this.#now = until;
  }

  /**
   * Like {@link ManualClock.advance}, but lets the event loop turn after each timer, so that work a
   * timer starts (a check, a retry) finishes at the time it fired, as it would with real time.
   */
  async advanceAsync(ms: number): Promise<void> {
    const until = this.#now + ms;
    for (let next = this.#nextDue(until); next !== undefined; next = this.#nextDue(until)) {
      this.#fire(next);
      await new Promise((resolve) => setImmediate(resolve));
    }
    this.#now = until;
  }

  #nextDue(until: number): Timer | undefined {
    let next: Timer | undefined;
    for (const timer of this.#timers.values()) {
      if (timer.at > until) continue;
      if (next === undefined || timer.at < next.at || (timer.at === next.at && timer.seq < next.seq))
        next = timer;
    }
    return next;
  }

  #fire(timer: Timer): void {
    this.#timers.delete(timer.seq);
    this.#now = timer.at;
    timer.callback();
  }
}
