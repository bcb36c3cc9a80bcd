/**
 * Where rate-limit state lives. The memory store keeps it in the process; `mcgravity/redis` shares
 * it between processes. A store evaluates every rule of one request atomically: the cost is taken
 * from all of them, or from none.
 */
import type { RateLimitDecision, ResolvedRule } from './rules.js';

/** A place to keep rate-limit state. */
export interface RateLimitStore {
  /**
   * Evaluates `rules[i]` for `keys[i]` and, only when every rule allows it, takes `cost` from each.
   * Returns the combined decision: the refusing rule's (the longest wait if several refuse), else
   * the one with the least left.
   * @param now the limiter's clock; a shared store may use its own time instead
   */
  consume(
    keys: readonly string[],
    rules: readonly ResolvedRule[],
    cost: number,
    now: number,
  ): RateLimitDecision | Promise<RateLimitDecision>;
  /** Releases connections or timers the store holds. */
  close?(): void | Promise<void>;
}

/** Combines per-rule outcomes the way {@link RateLimitStore.consume} describes. */
export function combine(
  outcomes: readonly { allowed: boolean; remaining: number; resetMs: number; retryAfterMs: number }[],
  rules: readonly ResolvedRule[],
): RateLimitDecision {
  let chosen = 0;
  for (let i = 1; i < outcomes.length; i++) {
    const a = outcomes[i] as (typeof outcomes)[number];
    const b = outcomes[chosen] as (typeof outcomes)[number];
    const better = a.allowed
      ? b.allowed && a.remaining < b.remaining
      : b.allowed || a.retryAfterMs > b.retryAfterMs;
    if (better) chosen = i;
  }
  const outcome = outcomes[chosen] as (typeof outcomes)[number];
  const rule = rules[chosen] as ResolvedRule;
  return {
    allowed: outcomes.every((o) => o.allowed),
    limit: rule.limit,
    remaining: outcome.remaining,
    resetMs: outcome.resetMs,
    retryAfterMs: outcome.retryAfterMs,
    rule: rule.name,
  };
}
