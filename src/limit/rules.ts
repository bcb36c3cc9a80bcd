/**
 * Rate-limit rules and decisions: the shapes every store and the limiter share.
 */
import { type Duration, parseDuration } from '../core/duration.js';
import { checkKnownOptions, checkNumber, describeValue } from '../core/validate.js';

/** How a rule counts. */
export type RateLimitAlgorithm = 'token-bucket' | 'sliding-window' | 'fixed-window';

/** One limit: `limit` requests per `windowMs`, counted by `algorithm`. */
export interface RateLimitRule {
  /** Names the rule in decisions, in a multi-key `consume()` and in store keys. @default 'default' (or `rule<i>`) */
  name?: string;
  /**
   * `token-bucket` (refills `limit` tokens per window, holds up to `burst`), `sliding-window`
   * (weighted count of this window and the last, as Cloudflare and nginx-like limiters do) or
   * `fixed-window` (a counter per aligned window). @default 'token-bucket'
   */
  algorithm?: RateLimitAlgorithm;
  /** Requests allowed per window. */
  limit: number;
  /** The window, e.g. `'1m'` or `60_000`. */
  windowMs: Duration;
  /** Token bucket only: the most tokens held, i.e. the largest burst. @default limit */
  burst?: number;
}

/** A rule with defaults applied and checked. */
export interface ResolvedRule {
  readonly name: string;
  readonly algorithm: RateLimitAlgorithm;
  readonly limit: number;
  readonly windowMs: number;
  readonly burst: number;
}

/** What a limiter answers for one `consume()`. */
export interface RateLimitDecision {
  /** Whether the request may go ahead. */
  readonly allowed: boolean;
  /** The limit of the deciding rule (the refusing one, or the one with the least left). */
  readonly limit: number;
  /** Requests left under that rule after this one. */
  readonly remaining: number;
  /** Milliseconds until that rule's quota is whole again. */
  readonly resetMs: number;
  /** Milliseconds until a request of the same cost could pass: 0 when allowed; Infinity if never (cost above the limit). */
  readonly retryAfterMs: number;
  /** Name of the deciding rule. */
  readonly rule: string;
  /** True when the key is on the bypass list and no rule was consulted. */
  readonly bypassed?: boolean;
}

const ALGORITHMS: readonly RateLimitAlgorithm[] = ['token-bucket', 'sliding-window', 'fixed-window'];

/** Checks one rule and fills in its defaults. */
export function resolveRule(rule: RateLimitRule, option: string, fallbackName: string): ResolvedRule {
  if (rule === null || typeof rule !== 'object') throw new TypeError(`${option} must be an object`);
  checkKnownOptions(rule, ['name', 'algorithm', 'limit', 'windowMs', 'burst'], option);
  const algorithm = rule.algorithm ?? 'token-bucket';
  if (!ALGORITHMS.includes(algorithm)) {
    throw new TypeError(
      `${option}.algorithm must be one of ${ALGORITHMS.join(', ')}, got ${describeValue(rule.algorithm)}`,
    );
  }
  const limit = checkNumber(rule.limit, `${option}.limit`, { min: 1 });
  const windowMs = parseDuration(rule.windowMs, `${option}.windowMs`);
  if (windowMs <= 0)
    throw new RangeError(`${option}.windowMs must be > 0, got ${describeValue(rule.windowMs)}`);
  const burst = rule.burst === undefined ? limit : checkNumber(rule.burst, `${option}.burst`, { min: 1 });
  if (rule.burst !== undefined && algorithm !== 'token-bucket') {
    throw new TypeError(`${option}.burst applies only to the token-bucket algorithm`);
  }
  const name = rule.name ?? fallbackName;
  if (typeof name !== 'string' || name === '' || name.includes(':')) {
    throw new TypeError(
      `${option}.name must be a non-empty string without ":", got ${describeValue(rule.name)}`,
    );
  }
  return { name, algorithm, limit, windowMs, burst };
}
