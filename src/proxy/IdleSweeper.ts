/**
 * Idle timeouts for many streams with one coarse timer: each stream notes the time of its last
 * activity (a number write per chunk, no timer reset, no allocation), or offers a progress counter
 * that the sweep reads (no work per chunk at all), and a sweep every `idleMs / 4` (at least every
 * second when idleMs allows) cuts the ones idle too long. The precision is a quarter of the
 * timeout, which is what an idle timeout needs. The watched streams sit in an intrusive linked list
 * (each entry carries its links), so starting and stopping a watch is a few pointer writes: no
 * hashing, and none of the rehashing a Set does as it grows and shrinks with the load. An `idleMs`
 * of 0 turns the timeout off: nothing is linked, no sweep runs.
 */
import type { Clock } from '../core/clock.js';

/** A stream the sweeper watches. */
export interface Watched {
  lastActivity: number;
  readonly onIdle: () => void;
  /** A counter that grows while the stream moves (bytes relayed); the sweep notes any change. */
  readonly progress?: () => number;
  lastProgress: number;
  /** The sweeper's links while watched. */
  prev: Watched | undefined;
  next: Watched | undefined;
}

/** Cuts streams that stay idle longer than `idleMs` (0: never). */
export class IdleSweeper {
  readonly #idleMs: number;
  readonly #clock: Clock;
  #head: Watched | undefined;
  #timer: unknown;

  constructor(idleMs: number, clock: Clock) {
    this.#idleMs = idleMs;
    this.#clock = clock;
  }

  /**
   * Starts watching; either the returned entry's `lastActivity` is set to `clock.now()` on activity,
   * or `progress` returns a counter that grows with it.
   */
  watch(onIdle: () => void, progress?: () => number): Watched {
    const head = this.#head;
    const entry: Watched =
      progress === undefined
        ? { lastActivity: this.#clock.now(), onIdle, lastProgress: 0, prev: undefined, next: head }
        : {
            lastActivity: this.#clock.now(),
            onIdle,
            progress,
            lastProgress: progress(),
            prev: undefined,
            next: head,
          };
    this.#link(entry);
    return entry;
  }

  /**
   * Starts watching an entry the caller made (an object of its own that implements {@link Watched},
   * so that no closure is made for it): its `lastActivity` is set to now.
   */
  track(entry: Watched): void {
    entry.lastActivity = this.#clock.now();
    entry.prev = undefined;
    entry.next = this.#head;
    this.#link(entry);
  }

  /** Puts `entry` (whose `next` is the current head) first in the list; with the timeout off, nowhere. */
  #link(entry: Watched): void {
    if (this.#idleMs <= 0) return;
    const head = this.#head;
    if (head !== undefined) head.prev = entry;
    this.#head = entry;
    if (this.#timer === undefined) this.#schedule();
  }

  /**
   * Starts watching an answer being relayed into `stream`: cut (destroyed) when `source.bytesRelayed`
   * stops growing for the idle time. One object, no closures: the proxy does this for every answer.
   */
  watchRelay(stream: { destroy(): unknown }, source: { readonly bytesRelayed: number }): Watched {
    const entry = new RelayWatch(this.#clock.now(), stream, source, this.#head);
    this.#link(entry);
    return entry;
  }

  /** Stops watching (nothing happens if `entry` is not watched). */
  unwatch(entry: Watched): void {
    const { prev, next } = entry;
    if (prev === undefined && this.#head !== entry) return;
    if (prev === undefined) this.#head = next;
    else prev.next = next;
    if (next !== undefined) next.prev = prev;
    entry.prev = entry.next = undefined;
  }

  /** Stops the sweeps. */
  close(): void {
    this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#head = undefined;
  }

  #schedule(): void {
    this.#timer = this.#clock.setTimeout(() => this.#sweep(), Math.max(1, Math.min(this.#idleMs / 4, 1000)));
  }

  #sweep(): void {
    this.#timer = undefined;
    const now = this.#clock.now();
    let entry = this.#head;
    while (entry !== undefined) {
      const next = entry.next; // taken first: onIdle may unwatch others, or this one
      if (entry.progress !== undefined) {
        const progress = entry.progress();
        if (progress !== entry.lastProgress) {
          entry.lastProgress = progress;
          entry.lastActivity = now;
          entry = next;
          continue;
        }
      }
      if (now - entry.lastActivity >= this.#idleMs) {
        this.unwatch(entry);
        entry.onIdle();
      }
      entry = next;
    }
    if (this.#head !== undefined) this.#schedule();
  }
}

/** A relayed answer under watch (see {@link IdleSweeper.watchRelay}). */
class RelayWatch implements Watched {
  lastActivity: number;
  lastProgress: number;
  prev: Watched | undefined = undefined;
  next: Watched | undefined;
  readonly #stream: { destroy(): unknown };
  readonly #source: { readonly bytesRelayed: number };

  constructor(
    now: number,
    stream: { destroy(): unknown },
    source: { readonly bytesRelayed: number },
    next: Watched | undefined,
  ) {
    this.lastActivity = now;
    this.#stream = stream;
    this.#source = source;
    this.lastProgress = source.bytesRelayed;
    this.next = next;
  }

  onIdle(): void {
    this.#stream.destroy();
  }

  progress(): number {
    return this.#source.bytesRelayed;
  }
}
