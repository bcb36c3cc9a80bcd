/**
 * A rate-limit store in Redis, so that several processes (proxy replicas, workers) enforce one limit
 * together. Every request is one atomic Lua script (see script.ts) over all of its rules, run with
 * EVALSHA and loaded with EVAL the first time. By default time comes from the Redis server, so
 * processes whose clocks differ still agree; pass a `clock` to use your own.
 *
 * Works with ioredis (an optional peer dependency: install it yourself) or any client with the same
 * `evalsha` / `eval` signatures. With Redis Cluster, the keys of one request must share a hash
 * slot: give them a hash tag in `prefix` or in the keys.
 */
import { createHash } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import { checkKnownOptions } from '../core/validate.js';
import type { RateLimitDecision, ResolvedRule } from '../limit/rules.js';
import { combine, type RateLimitStore } from '../limit/store.js';
import { RATE_LIMIT_SCRIPT } from './script.js';

/** The client calls RedisStore makes: ioredis's `evalsha` and `eval`. */
export interface RedisScriptClient {
  evalsha(sha1: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>;
  eval(script: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>;
}

/** Options of {@link RedisStore}. */
export interface RedisStoreOptions {
  /** A connected client, e.g. `new Redis({ enableOfflineQueue: false })` from ioredis. */
  client: RedisScriptClient;
  /** Prefix of every key. @default 'mcgravity:ratelimit:' */
  prefix?: string;
  /** Time source; by default the Redis server's clock. */
  clock?: Clock;
  /** Called by `close()`, e.g. `() => client.quit()`. */
  onClose?: () => unknown;
}

const ALGORITHM_CODES = { 'token-bucket': 1, 'sliding-window': 2, 'fixed-window': 3 } as const;
const SCRIPT_SHA = createHash('sha1').update(RATE_LIMIT_SCRIPT).digest('hex');

/** Rate-limit state shared through Redis. */
export class RedisStore implements RateLimitStore {
  readonly #client: RedisScriptClient;
  readonly #prefix: string;
  readonly #clock: Clock | undefined;
  readonly #onClose: (() => unknown) | undefined;

  constructor(options: RedisStoreOptions) {
    checkKnownOptions(options ?? {}, ['client', 'prefix', 'clock', 'onClose'], 'RedisStore');
    const client = options?.client;
    if (typeof client?.evalsha !== 'function' || typeof client.eval !== 'function') {
      throw new TypeError('client must be a Redis client with evalsha() and eval(), such as ioredis');
    }
    this.#client = client;
    this.#prefix = options.prefix ?? 'mcgravity:ratelimit:';
    if (typeof this.#prefix !== 'string') throw new TypeError('prefix must be a string');
    this.#clock = options.clock;
    this.#onClose = options.onClose;
  }

  async consume(
    keys: readonly string[],
    rules: readonly ResolvedRule[],
    cost: number,
  ): Promise<RateLimitDecision> {
    const args: (string | number)[] = [];
    for (let i = 0; i < rules.length; i++)
      args.push(`${this.#prefix}${(rules[i] as ResolvedRule).name}:${keys[i]}`);
    args.push(cost, this.#clock === undefined ? '' : Math.floor(this.#clock.now()));
    for (const rule of rules)
      args.push(ALGORITHM_CODES[rule.algorithm], rule.limit, rule.windowMs, rule.burst);
    const reply = await this.#run(rules.length, args);
    if (!Array.isArray(reply) || reply.length !== rules.length * 4) {
      throw new TypeError(`unexpected reply from the rate-limit script: ${JSON.stringify(reply)}`);
    }
    const outcomes = rules.map((_, i) => ({
      allowed: Number(reply[i * 4]) === 1,
      remaining: Number(reply[i * 4 + 1]),
      resetMs: Number(reply[i * 4 + 2]),
      retryAfterMs: Number(reply[i * 4 + 3]) === -1 ? Number.POSITIVE_INFINITY : Number(reply[i * 4 + 3]),
    }));
    return combine(outcomes, rules);
  }

  async close(): Promise<void> {
    await this.#onClose?.();
  }

  async #run(numKeys: number, args: (string | number)[]): Promise<unknown> {
    try {
      return await this.#client.evalsha(SCRIPT_SHA, numKeys, ...args);
    } catch (error) {
      if (!String((error as Error)?.message).includes('NOSCRIPT')) throw error;
      return this.#client.eval(RATE_LIMIT_SCRIPT, numKeys, ...args);
    }
  }
}
