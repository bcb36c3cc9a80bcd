/**
 * The three rate-limit algorithms as pure updates of one key's state, shared by the memory store
 * (and mirrored line for line by the Redis store's Lua script).
 *
 * - Token bucket: `burst` tokens at most, refilled continuously at `limit / windowMs` per ms; a
 *   request takes `cost` tokens. Over any span t it admits at most `burst + rate × t`.
 * - Fixed window: a counter per window aligned to multiples of `windowMs`.
 * - Sliding window (the weighted two-window counter): the estimate is
 *   `previous × (1 − elapsed / windowMs) + current`, which smooths the fixed window's double burst
 *   at window edges with two numbers of state (Cloudflare, "How we built rate limiting").
 *
 * O(1) and allocation-free: results are written into the caller's {@link Evaluation}.
 */
import type { ResolvedRule } from './rules.js';

/**
 * Tolerance for the floating-point sums of refills and weights: a bucket that holds 0.9999999999
 * tokens after exactly the time one token takes is full, not short. Waits are rounded up to whole
 * milliseconds after the same allowance.
 */
const EPSILON = 1e-9;

function ceilMs(ms: number): number {
  return Math.ceil(ms - 1e-6);
}

/**
 * A key's state. Token bucket: `a` tokens, `b` last refill time. Windows: `a` start of the current
 * window, `b` its count, `c` the previous window's count.
 */
export interface KeyState {
  a: number;
  b: number;
  c: number;
}

/** The outcome of evaluating one rule for one key. */
export interface Evaluation {
  allowed: boolean;
  remaining: number;
  resetMs: number;
  retryAfterMs: number;
}

/** A fresh state for a key first seen at `now`. */
export function initialState(rule: ResolvedRule, now: number): KeyState {
  return rule.algorithm === 'token-bucket'
    ? { a: rule.burst, b: now, c: 0 }
    : { a: Math.floor(now / rule.windowMs) * rule.windowMs, b: 0, c: 0 };
}

/**
 * Brings `state` up to `now`, decides whether `cost` fits, and takes it when `commit` is true and it
 * fits. Writes the outcome into `out`.
 */
export function evaluate(
  rule: ResolvedRule,
  state: KeyState,
  now: number,
  cost: number,
  commit: boolean,
  out: Evaluation,
): void {
  if (rule.algorithm === 'token-bucket') tokenBucket(rule, state, now, cost, commit, out);
  else if (rule.algorithm === 'fixed-window') fixedWindow(rule, state, now, cost, commit, out);
  else slidingWindow(rule, state, now, cost, commit, out);
}

function tokenBucket(
  rule: ResolvedRule,
  state: KeyState,
  now: number,
  cost: number,
  commit: boolean,
  out: Evaluation,
) {
  const rate = rule.limit / rule.windowMs; // tokens per ms
  const elapsed = Math.max(0, now - state.b);
  let tokens = Math.min(rule.burst, state.a + elapsed * rate);
  state.a = tokens;
  state.b = Math.max(state.b, now);
  const allowed = tokens + EPSILON >= cost;
  if (allowed && commit) {
    tokens -= cost;
    state.a = tokens;
  }
  out.allowed = allowed;
  out.remaining = Math.floor(allowed && !commit ? tokens - cost : tokens);
  out.resetMs = Math.max(0, ceilMs((rule.burst - tokens) / rate));
  out.retryAfterMs = allowed
    ? 0
    : cost > rule.burst
      ? Number.POSITIVE_INFINITY
      : ceilMs((cost - tokens) / rate);
}

function fixedWindow(
  rule: ResolvedRule,
  state: KeyState,
  now: number,
  cost: number,
  commit: boolean,
  out: Evaluation,
) {
  const windowMs = rule.windowMs;
  const start = Math.floor(now / windowMs) * windowMs;
  if (start > state.a) {
    state.a = start;
    state.b = 0;
  }
  const allowed = state.b + cost <= rule.limit;
  if (allowed && commit) state.b += cost;
  const used = allowed && !commit ? state.b + cost : state.b;
  const resetMs = state.a + windowMs - now;
  out.allowed = allowed;
  out.remaining = Math.max(0, Math.floor(rule.limit - used));
  out.resetMs = used === 0 ? 0 : resetMs;
  out.retryAfterMs = allowed ? 0 : cost > rule.limit ? Number.POSITIVE_INFINITY : resetMs;
}

function slidingWindow(
  rule: ResolvedRule,
  state: KeyState,
  now: number,
  cost: number,
  commit: boolean,
  out: Evaluation,
) {
  const windowMs = rule.windowMs;
  const limit = rule.limit;
  const start = Math.floor(now / windowMs) * windowMs;
  if (start > state.a) {
    state.c = start - state.a === windowMs ? state.b : 0;
    state.b = 0;
    state.a = start;
  }
  const elapsed = now - state.a;
  const left = windowMs - elapsed; // ms until the window rolls
  const estimate = (state.c * left) / windowMs + state.b;
  const allowed = estimate + cost <= limit + EPSILON;
  if (allowed && commit) state.b += cost;
  const current = state.b + (allowed && !commit ? cost : 0);
  const used = (state.c * left) / windowMs + current;
  out.allowed = allowed;
  out.remaining = Math.max(0, Math.floor(limit - used));
  // The previous window's weight is gone when this one ends; this window's count, one window later.
  out.resetMs = current > 0 ? left + windowMs : state.c > 0 ? left : 0;
  out.retryAfterMs = allowed ? 0 : slidingRetryAfter(limit, cost, state.b, state.c, left, windowMs);
}

// Smallest wait after which `estimate + cost <= limit`, first within this window (the previous
// count's weight shrinking), else within the next one (this count becoming the shrinking one).
function slidingRetryAfter(
  limit: number,
  cost: number,
  current: number,
  previous: number,
  left: number,
  windowMs: number,
) {
  if (cost > limit) return Number.POSITIVE_INFINITY;
  const room = limit - cost - current;
  if (room >= 0 && previous > 0) {
    // previous × (left − t) / windowMs ≤ room
    const t = left - (room * windowMs) / previous;
    if (t <= left) return Math.max(0, ceilMs(t));
  }
  // Next window: current × (windowMs − t') / windowMs ≤ limit − cost
  const tNext = current > 0 ? windowMs - ((limit - cost) * windowMs) / current : 0;
  return ceilMs(left + Math.max(0, tNext));
}
