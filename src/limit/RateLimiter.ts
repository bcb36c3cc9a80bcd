/**
 * A rate limiter over keys (client ids, addresses, API tokens), with one rule or several.
 *
 * ```ts
 * const limiter = new RateLimiter({ algorithm: 'token-bucket', limit: 100, windowMs: '1m', burst: 20 });
 * const decision = await limiter.consume(clientIp);
 * if (!decision.allowed) reply(429, rateLimitHeaders(decision));
 * ```
 *
 * Several rules are checked together and the cost is taken from all or none: with
 * `rules: [{ name: 'client', … }, { name: 'ip', … }]`, `consume({ client: id, ip })` applies each
 * rule to its own key (per client id and per address, say). A plain string key applies every
 * rule to that key.
 *
 * Overflow: `reject` answers at once; `queue` holds refused requests first in, first out (at most
 * `maxQueue` per key, each for at most `queueTimeoutMs`) and lets them through as the limit allows,
 * like nginx's `limit_req` with `burst` and no `nodelay`. Keys on the `bypass` list are never
 * limited. If a shared store fails (Redis down), `onStoreError` decides: `'allow'` (fail open,
 * the default) or `'deny'` (fail closed), and a `store:error` event says so.
 */
import { EventEmitter } from 'eventemitter3';
import { type Clock, systemClock } from '../core/clock.js';
import { type Duration, optionalDuration } from '../core/duration.js';
import { checkKnownOptions, checkNumber, describeValue, optionalNumber } from '../core/validate.js';
import { MemoryStore } from './MemoryStore.js';
import { OverflowQueue } from './OverflowQueue.js';
import {
  type RateLimitAlgorithm,
  type RateLimitDecision,
  type RateLimitRule,
  type ResolvedRule,
  resolveRule,
} from './rules.js';
import type { RateLimitStore } from './store.js';

/** Options of {@link RateLimiter}: one rule given inline, or `rules`. */
export interface RateLimiterOptions {
  /** Algorithm of the inline rule. @default 'token-bucket' */
  algorithm?: RateLimitAlgorithm;
  /** Requests per window of the inline rule. */
  limit?: number;
  /** Window of the inline rule. */
  windowMs?: Duration;
  /** Token-bucket capacity of the inline rule. @default limit */
  burst?: number;
  /** Several rules, checked together (instead of the inline one). */
  rules?: readonly RateLimitRule[];
  /** Most keys per rule kept by the default memory store. @default 100_000 */
  maxKeys?: number;
  /** Where state lives. @default a MemoryStore with `maxKeys` */
  store?: RateLimitStore;
  /** What happens to a refused request. @default 'reject' */
  overflow?: 'reject' | 'queue';
  /** With `overflow: 'queue'`: most requests waiting per key. @default 100 */
  maxQueue?: number;
  /** With `overflow: 'queue'`: longest wait before a queued request is refused. @default 10_000 */
  queueTimeoutMs?: Duration;
  /** Keys that are never limited (e.g. internal services). */
  bypass?: readonly string[];
  /** When the store fails or does not answer in `storeTimeoutMs`: let the request through, or refuse it. @default 'allow' */
  onStoreError?: 'allow' | 'deny';
  /** Longest wait for an asynchronous store. @default 1_000 */
  storeTimeoutMs?: Duration;
  /** Clock for windows, queues and store timeouts. @default systemClock */
  clock?: Clock;
}

/** A key for {@link RateLimiter.consume}: one key for every rule, or a key per rule name. */
export type RateLimitKey = string | Readonly<Record<string, string>>;

/** Events of {@link RateLimiter}. */
export interface RateLimiterEvents {
  /** A request was refused. */
  limited: (info: { key: RateLimitKey; decision: RateLimitDecision }) => void;
  /** The store failed; the request was let through (`allow`) or refused (`deny`). */
  'store:error': (info: { error: unknown; outcome: 'allow' | 'deny' }) => void;
}

/** Counters of {@link RateLimiter.stats}. */
export interface RateLimiterStats {
  readonly allowed: number;
  readonly limited: number;
  readonly queued: number;
  readonly storeErrors: number;
}

const KNOWN = [
  'algorithm',
  'limit',
  'windowMs',
  'burst',
  'rules',
  'maxKeys',
  'store',
  'overflow',
  'maxQueue',
  'queueTimeoutMs',
  'bypass',
  'onStoreError',
  'storeTimeoutMs',
  'clock',
];

function resolveRules(options: RateLimiterOptions): ResolvedRule[] {
  const inline = options.limit !== undefined || options.windowMs !== undefined;
  if (options.rules !== undefined) {
    if (inline || options.algorithm !== undefined || options.burst !== undefined) {
      throw new TypeError('RateLimiter takes either rules or an inline limit/windowMs, not both');
    }
    if (!Array.isArray(options.rules) || options.rules.length === 0) {
      throw new TypeError('rules must be a non-empty array of rate-limit rules');
    }
    const rules = options.rules.map((rule, i) => resolveRule(rule, `rules[${i}]`, `rule${i}`));
    const names = new Set(rules.map((rule) => rule.name));
    if (names.size !== rules.length) throw new TypeError('rules must have distinct names');
    return rules;
  }
  if (options.limit === undefined || options.windowMs === undefined) {
    throw new TypeError('RateLimiter needs limit and windowMs (or rules)');
  }
  const rule: RateLimitRule = { limit: options.limit, windowMs: options.windowMs };
  if (options.algorithm !== undefined) rule.algorithm = options.algorithm;
  if (options.burst !== undefined) rule.burst = options.burst;
  return [resolveRule(rule, 'RateLimiter', 'default')];
}

/** Limits the rate of requests per key. */
export class RateLimiter extends EventEmitter<RateLimiterEvents> {
  /** The rules, with defaults applied. */
  readonly rules: readonly ResolvedRule[];
  readonly #store: RateLimitStore;
  readonly #memory: MemoryStore | undefined;
  readonly #queue: OverflowQueue | undefined;
  readonly #bypass: ReadonlySet<string>;
  readonly #failOpen: boolean;
  readonly #storeTimeoutMs: number;
  readonly #clock: Clock;
  #allowed = 0;
  #limited = 0;
  #storeErrors = 0;

  constructor(options: RateLimiterOptions) {
    super();
    if (options === null || typeof options !== 'object') throw new TypeError('RateLimiter needs options');
    checkKnownOptions(options, KNOWN, 'RateLimiter');
    this.rules = resolveRules(options);
    if (options.store !== undefined && options.maxKeys !== undefined) {
      throw new TypeError('maxKeys applies to the default memory store; configure your own store instead');
    }
    this.#store =
      options.store ?? new MemoryStore(options.maxKeys === undefined ? {} : { maxKeys: options.maxKeys });
    if (typeof this.#store?.consume !== 'function') throw new TypeError('store must have a consume() method');
    this.#memory = this.#store instanceof MemoryStore ? this.#store : undefined;
    const overflow = options.overflow ?? 'reject';
    if (overflow !== 'reject' && overflow !== 'queue') {
      throw new TypeError(`overflow must be 'reject' or 'queue', got ${describeValue(options.overflow)}`);
    }
    const maxQueue = optionalNumber(options.maxQueue, 'maxQueue', 100, { min: 1, integer: true });
    const queueTimeoutMs = optionalDuration(options.queueTimeoutMs, 'queueTimeoutMs', 10_000);
    if (overflow !== 'queue' && (options.maxQueue !== undefined || options.queueTimeoutMs !== undefined)) {
      throw new TypeError("maxQueue and queueTimeoutMs apply only with overflow: 'queue'");
    }
    if (options.bypass !== undefined && !Array.isArray(options.bypass))
      throw new TypeError('bypass must be an array of keys');
    this.#bypass = new Set(options.bypass ?? []);
    const onStoreError = options.onStoreError ?? 'allow';
    if (onStoreError !== 'allow' && onStoreError !== 'deny') {
      throw new TypeError(
        `onStoreError must be 'allow' or 'deny', got ${describeValue(options.onStoreError)}`,
      );
    }
    this.#failOpen = onStoreError === 'allow';
    this.#storeTimeoutMs = optionalDuration(options.storeTimeoutMs, 'storeTimeoutMs', 1_000);
    this.#clock = options.clock ?? systemClock;
    this.#queue =
      overflow === 'queue'
        ? new OverflowQueue({
            maxQueue,
            queueTimeoutMs,
            clock: this.#clock,
            ask: (keys, cost) => this.#ask(keys, cost),
            refuse: (resetMs, retryAfterMs) => this.#decision(false, resetMs, retryAfterMs),
          })
        : undefined;
  }

  /** Counters since construction. */
  stats(): RateLimiterStats {
    return {
      allowed: this.#allowed,
      limited: this.#limited,
      queued: this.#queue?.queued ?? 0,
      storeErrors: this.#storeErrors,
    };
  }

  /**
   * Takes `cost` from the key's quota under every rule, or refuses. With `overflow: 'queue'` a
   * refused request waits its turn instead, up to `queueTimeoutMs`.
   */
  consume(key: RateLimitKey, cost = 1): Promise<RateLimitDecision> {
    if (this.#memory !== undefined && this.#queue === undefined) {
      // Nothing to wait for: answer synchronously, wrapped.
      try {
        return Promise.resolve(this.consumeSync(key, cost));
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return this.#consume(key, cost);
  }

  async #consume(key: RateLimitKey, cost: number): Promise<RateLimitDecision> {
    checkNumber(cost, 'cost', { above: 0 });
    const keys = this.#keysFor(key);
    if (keys === undefined) return this.#bypassed();
    const queue = this.#queue;
    const lineKey = queue === undefined ? '' : keys.join('\u0000');
    // First in, first out: while others wait for this key, a newcomer joins the end of the line.
    if (queue?.waiting(lineKey)) return this.#count(await queue.enqueue(lineKey, keys, cost), key);
    const decision = await this.#ask(keys, cost);
    if (decision.allowed || queue === undefined || !Number.isFinite(decision.retryAfterMs)) {
      return this.#count(decision, key);
    }
    return this.#count(await queue.enqueue(lineKey, keys, cost, decision.retryAfterMs), key);
  }

  /**
   * The synchronous form, for the memory store without queueing: no promise, and with a single rule
   * no allocation besides the decision.
   * @throws TypeError with another store or with `overflow: 'queue'`
   */
  consumeSync(key: RateLimitKey, cost = 1): RateLimitDecision {
    const memory = this.#memory;
    if (memory === undefined || this.#queue !== undefined) {
      throw new TypeError("consumeSync() needs the memory store and overflow: 'reject'; use consume()");
    }
    if (!(cost > 0)) checkNumber(cost, 'cost', { above: 0 });
    if (typeof key === 'string' && this.rules.length === 1) {
      if (this.#bypass.size > 0 && this.#bypass.has(key)) return this.#bypassed();
      return this.#count(memory.consumeOne(key, this.rules[0] as ResolvedRule, cost, this.#clock.now()), key);
    }
    const keys = this.#keysFor(key);
    if (keys === undefined) return this.#bypassed();
    return this.#count(memory.consume(keys, this.rules, cost, this.#clock.now()), key);
  }

  /** Refuses everything still queued and stops the queue timers. Closes the store if it has `close()`. */
  async close(): Promise<void> {
    this.#queue?.close();
    await this.#store.close?.();
  }

  // The store key of every rule for this request, or undefined when the request bypasses the limits.
  #keysFor(key: RateLimitKey): string[] | undefined {
    if (typeof key === 'string') {
      if (this.#bypass.has(key)) return undefined;
      return this.rules.map(() => key);
    }
    if (key === null || typeof key !== 'object')
      throw new TypeError('key must be a string or an object of rule name → key');
    const keys: string[] = [];
    for (const rule of this.rules) {
      const value = key[rule.name];
      if (typeof value !== 'string') throw new TypeError(`key has no string for rule "${rule.name}"`);
      if (this.#bypass.has(value)) return undefined;
      keys.push(value);
    }
    return keys;
  }

  async #ask(keys: readonly string[], cost: number): Promise<RateLimitDecision> {
    let timer: unknown;
    try {
      const answer = this.#store.consume(keys, this.rules, cost, this.#clock.now());
      if (!(answer instanceof Promise)) return answer;
      const timeout = new Promise<never>((_, reject) => {
        timer = this.#clock.setTimeout(
          () => reject(new Error(`rate-limit store did not answer within ${this.#storeTimeoutMs} ms`)),
          this.#storeTimeoutMs,
        );
      });
      return await Promise.race([answer, timeout]);
    } catch (error) {
      this.#storeErrors++;
      const outcome = this.#failOpen ? 'allow' : 'deny';
      this.emit('store:error', { error, outcome });
      return this.#decision(this.#failOpen, 0, this.#failOpen ? 0 : 1000);
    } finally {
      this.#clock.clearTimeout(timer);
    }
  }

  #count(decision: RateLimitDecision, key: RateLimitKey): RateLimitDecision {
    if (decision.allowed) this.#allowed++;
    else {
      this.#limited++;
      this.emit('limited', { key, decision });
    }
    return decision;
  }

  #bypassed(): RateLimitDecision {
    this.#allowed++;
    return { ...this.#decision(true, 0, 0), bypassed: true };
  }

  /** A decision the store did not make (bypass, store failure, queue refusal), under the first rule. */
  #decision(allowed: boolean, resetMs: number, retryAfterMs: number): RateLimitDecision {
    const rule = this.rules[0] as ResolvedRule;
    return {
      allowed,
      limit: rule.limit,
      remaining: allowed ? rule.limit : 0,
      resetMs,
      retryAfterMs,
      rule: rule.name,
    };
  }
}
