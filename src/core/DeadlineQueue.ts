/**
 * Many timeouts of one duration on one timer, to the millisecond. Every item gets the same `ms`, so
 * items expire in the order they were added: they sit in an intrusive linked list (the item is the
 * node, so adding one allocates nothing), and a single clock timer is armed for the head. Removing an
 * item (its answer came in time, the common case) is an O(1) unlink and touches no timer: the timer
 * fires at the old head's deadline, finds nothing due, and re-arms for the new head.
 *
 * Why not undici's `headersTimeout`: undici keeps its timers on a coarse tick (about half a second),
 * so a 100 ms first-byte timeout fired after up to a second. Why not a timer per request: a `Timeout`
 * object and a timer-list insertion for every request, almost always cancelled.
 */
import type { Clock } from './clock.js';

/** An item a {@link DeadlineQueue} can hold: it carries its own links. */
export interface DeadlineItem {
  /** Set by the queue: when the item expires, on the queue's clock. */
  deadlineAt: number;
  /** Set by the queue: its neighbours while queued. */
  deadlinePrev: DeadlineItem | undefined;
  deadlineNext: DeadlineItem | undefined;
  /** Called once when its time is up (and it is taken out of the queue first). */
  expire(): void;
}

/** Timeouts of `ms` on `clock`; see the module comment. */
export class DeadlineQueue {
  readonly ms: number;
  readonly #clock: Clock;
  #head: DeadlineItem | undefined;
  #tail: DeadlineItem | undefined;
  #timer: unknown;

  constructor(ms: number, clock: Clock) {
    this.ms = ms;
    this.#clock = clock;
  }

  /** Starts `item`'s timeout now. */
  add(item: DeadlineItem): void {
    const at = this.#clock.now() + this.ms;
    item.deadlineAt = at;
    item.deadlinePrev = this.#tail;
    item.deadlineNext = undefined;
    if (this.#tail === undefined) this.#head = item;
    else this.#tail.deadlineNext = item;
    this.#tail = item;
    if (this.#timer === undefined) this.#arm(at);
  }

  /** Stops `item`'s timeout (nothing happens if it is not queued). */
  remove(item: DeadlineItem): void {
    const { deadlinePrev: prev, deadlineNext: next } = item;
    if (prev === undefined && this.#head !== item) return; // not queued
    if (prev === undefined) this.#head = next;
    else prev.deadlineNext = next;
    if (next === undefined) this.#tail = prev;
    else next.deadlinePrev = prev;
    item.deadlinePrev = item.deadlineNext = undefined;
  }

  /** Cancels the timer; items still queued never expire. */
  close(): void {
    this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#head = this.#tail = undefined;
  }

  #arm(at: number): void {
    this.#timer = this.#clock.setTimeout(this.#fire, Math.max(0, at - this.#clock.now()));
  }

  readonly #fire = (): void => {
    this.#timer = undefined;
    const now = this.#clock.now();
    for (let head = this.#head; head !== undefined && head.deadlineAt <= now; head = this.#head) {
      this.remove(head);
      head.expire();
    }
    if (this.#head !== undefined && this.#timer === undefined) this.#arm(this.#head.deadlineAt);
  };
}
