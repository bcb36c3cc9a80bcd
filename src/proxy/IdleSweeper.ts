/**
 * Idle timeouts for many streams with one coarse timer: each stream notes the time of its last
 * activity (a number write per chunk, no timer reset, no allocation), or offers a progress counter
 * that the sweep reads (no work per chunk at all), and a sweep every `idleMs / 4` (at least every
 * second when idleMs allows) cuts the ones idle too long. The precision is a quarter of the
 * timeout, which is what an idle timeout needs.
 */
import type { Clock } from '../core/clock.js';

/** A stream the sweeper watches. */
export interface Watched {
  lastActivity: number;
  readonly onIdle: () => void;
  /** A counter that grows while the stream moves (bytes relayed); the sweep notes any change. */
  readonly progress?: () => number;
  lastProgress: number;
}

/** Cuts streams that stay idle longer than `idleMs`. */
export class IdleSweeper {
  readonly #idleMs: number;
  readonly #clock: Clock;
  readonly #watched = new Set<Watched>();
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
    const entry: Watched =
      progress === undefined
        ? { lastActivity: this.#clock.now(), onIdle, lastProgress: 0 }
        : { lastActivity: this.#clock.now(), onIdle, progress, lastProgress: progress() };
    this.#watched.add(entry);
    if (this.#timer === undefined) this.#schedule();
    return entry;
  }

  /** Stops watching. */
  unwatch(entry: Watched): void {
    this.#watched.delete(entry);
  }

  /** Stops the sweeps. */
  close(): void {
    this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#watched.clear();
  }

  #schedule(): void {
    this.#timer = this.#clock.setTimeout(() => this.#sweep(), Math.max(1, Math.min(this.#idleMs / 4, 1000)));
  }

  #sweep(): void {
    this.#timer = undefined;
    const now = this.#clock.now();
    for (const entry of this.#watched) {
      if (entry.progress !== undefined) {
        const progress = entry.progress();
        if (progress !== entry.lastProgress) {
          entry.lastProgress = progress;
          entry.lastActivity = now;
          continue;
        }
      }
      if (now - entry.lastActivity >= this.#idleMs) {
        this.#watched.delete(entry);
        entry.onIdle();
      }
    }
    if (this.#watched.size > 0) this.#schedule();
  }
}
