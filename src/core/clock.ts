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

// State of the default generator, in a typed array so that updating it never allocates.
const sfcState = new Uint32Array(4);
crypto.getRandomValues(sfcState);
sfcState[3] = 1; // the counter word; any seed is valid once the counter runs

/**
 * The default random source: sfc32 (Chris Doty-Humphrey's Small Fast Counter generator, which passes
 * PractRand and BigCrush), seeded once per process from `crypto.getRandomValues`. Used instead of
 * `Math.random` because V8 returns each `Math.random()` result as a fresh heap number, an allocation
 * on every pick; this one returns an unboxed double, about twice as fast. 32 bits of randomness per
 * call, plenty for choosing among endpoints. Not for cryptography.
 */
export const systemRandom: RandomSource = function sfc32(): number {
  const a = sfcState[0] as number;
  const b = sfcState[1] as number;
  const c = sfcState[2] as number;
  const d = sfcState[3] as number;
  const t = (((a + b) | 0) + d) | 0;
  sfcState[3] = (d + 1) | 0;
  sfcState[0] = b ^ (b >>> 9);
  sfcState[1] = (c + (c << 3)) | 0;
  sfcState[2] = (((c << 21) | (c >>> 11)) + t) | 0;
  return (t >>> 0) / 4294967296;
};
