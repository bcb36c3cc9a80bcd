/**
 * Time and chance, injectable. Every timer-driven part of mcgravity takes a {@link Clock} and every
 * randomised part a {@link RandomSource}, so tests drive them deterministically.
 */

/** A source of time and timers. `now()` is monotonic milliseconds; its origin is arbitrary. */
export interface Clock {
  /** Current time in milliseconds, monotonic. */
  now(): number;
  /** Calls `callback` once after `ms` milliseconds; returns a handle for {@link Clock.clearTimeout}. */
  setTimeout(callback: () => void, ms: number): unknown;
  /** Cancels a timer made by {@link Clock.setTimeout}; unknown or fired handles are ignored. */
  clearTimeout(handle: unknown): void;
}

/** A uniform random number in [0, 1), like `Math.random`. */
export type RandomSource = () => number;

/**
 * The real clock: `performance.now()` and Node timers. Its timers are unref'd, so a background timer
 * (a health check, a decay tick) never keeps the process alive on its own.
 */
export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout(callback, ms) {
    const timer = setTimeout(callback, ms);
    timer.unref();
    return timer;
  },
  clearTimeout(handle) {
    clearTimeout(handle as NodeJS.Timeout);
  },
};

/** The default random source. */
export const systemRandom: RandomSource = Math.random;
