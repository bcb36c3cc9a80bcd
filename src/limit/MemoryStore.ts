/**
 * The in-process rate-limit store. Each rule's keys live in an LRU (`lru-cache`) of at most
 * `maxKeys` entries, so a flood of distinct keys (spoofed client ids, a scan of addresses) evicts
 * the least recently seen keys instead of growing memory without bound. An evicted key starts over
 * with a full quota, as nginx's `limit_req_zone` does when its zone is full.
 *
 * Synchronous, O(1) per rule; a single-rule consume allocates only the decision it returns.
 */
import { LRUCache } from 'lru-cache';
import { checkKnownOptions, optionalNumber } from '../core/validate.js';
import { type Evaluation, evaluate, initialState, type KeyState } from './algorithms.js';
import type { RateLimitDecision, ResolvedRule } from './rules.js';
import { combine, type RateLimitStore } from './store.js';

/** Options of {@link MemoryStore}. */
export interface MemoryStoreOptions {
  /** Most keys remembered per rule. @default 100_000 */
  maxKeys?: number;
}

/** Rate-limit state in this process. */
export class MemoryStore implements RateLimitStore {
  readonly #maxKeys: number;
  readonly #caches = new Map<string, LRUCache<string, KeyState>>();
  readonly #scratch: Evaluation = { allowed: false, remaining: 0, resetMs: 0, retryAfterMs: 0 };

  constructor(options: MemoryStoreOptions = {}) {
    checkKnownOptions(options, ['maxKeys'], 'MemoryStore');
    this.#maxKeys = optionalNumber(options.maxKeys, 'maxKeys', 100_000, { min: 1, integer: true });
  }

  /** Keys held now, over all rules. */
  get size(): number {
    let size = 0;
    for (const cache of this.#caches.values()) size += cache.size;
    return size;
  }

  consume(
    keys: readonly string[],
    rules: readonly ResolvedRule[],
    cost: number,
    now: number,
  ): RateLimitDecision {
    if (rules.length === 1) return this.consumeOne(keys[0] as string, rules[0] as ResolvedRule, cost, now);
    const outcomes = rules.map((rule, i) => {
      evaluate(rule, this.#state(rule, keys[i] as string, now), now, cost, false, this.#scratch);
      return { ...this.#scratch };
    });
    if (!outcomes.every((o) => o.allowed)) return combine(outcomes, rules);
    const committed = rules.map((rule, i) => {
      evaluate(rule, this.#state(rule, keys[i] as string, now), now, cost, true, this.#scratch);
      return { ...this.#scratch };
    });
    return combine(committed, rules);
  }

  /** One rule, one key: the allocation-light path the limiter takes for a single rule. */
  consumeOne(key: string, rule: ResolvedRule, cost: number, now: number): RateLimitDecision {
    const out = this.#scratch;
    evaluate(rule, this.#state(rule, key, now), now, cost, true, out);
    return {
      allowed: out.allowed,
      limit: rule.limit,
      remaining: out.remaining,
      resetMs: out.resetMs,
      retryAfterMs: out.retryAfterMs,
      rule: rule.name,
    };
  }

  /** Forgets every key. */
  clear(): void {
    this.#caches.clear();
  }

  #state(rule: ResolvedRule, key: string, now: number): KeyState {
    let cache = this.#caches.get(rule.name);
    if (cache === undefined) {
      cache = new LRUCache<string, KeyState>({ max: this.#maxKeys });
      this.#caches.set(rule.name, cache);
    }
    let state = cache.get(key);
    if (state === undefined) {
      state = initialState(rule, now);
      cache.set(key, state);
    }
    return state;
  }
}
