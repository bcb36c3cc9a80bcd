/**
 * Rate limits in the proxy: one limit for everyone, or classes of clients, each with its own limit.
 *
 * A class says which requests it is for (`match`: headers, and the client keys it names) and how a
 * client is identified (`key`: address, a header, or a function). The first class that matches a
 * request decides: an `exempt` class lets it through unlimited (internal services), any other takes
 * one request from the client's quota in its limiter. A request no class matches is not limited.
 * This is how nginx operators classify clients with a `map` in front of `limit_req` zones, and how
 * the product's `rate_limits` rules read ("premium clients by client id, 1000 a minute; everyone
 * else by address, 100 a minute; internal services bypass").
 */
import type { IncomingMessage } from 'node:http';
import { type HeaderMatchers, headerMatchers, headersMatch, type TextMatch } from '../core/match.js';
import { checkKnownOptions, describeValue } from '../core/validate.js';
import type { RateLimiter } from '../limit/RateLimiter.js';
import type { RateLimitDecision } from '../limit/rules.js';

/** What identifies a client: its address (after `trustProxy`), a header, or your function. */
export type RateLimitKeySource = 'ip' | `header:${string}` | ((req: IncomingMessage) => string);

/** Which requests a limit (or an exemption) is for; every given condition must hold. */
export interface RateLimitMatch {
  /** Headers that must be present with these values (string: equal; RegExp: match). */
  headers?: Record<string, TextMatch>;
  /** Client keys (as `key` identifies them) this class is for, such as a list of client ids. */
  keys?: readonly string[];
}

/** A rate limit in the proxy, or one class of clients in a list of them. */
export interface ProxyRateLimit {
  limiter: RateLimiter;
  /**
   * What identifies a client. A `header:` key falls back to the client's address when the header
   * is missing or empty. @default 'ip'
   */
  key?: RateLimitKeySource;
  /** Keys never limited. */
  bypass?: readonly string[];
  /** The requests this limit is for. @default every request */
  match?: RateLimitMatch;
}

/** A class of clients that no limit applies to, in a list of rate limits. */
export interface ProxyRateLimitExemption {
  exempt: true;
  /** What identifies a client, for `match.keys`. @default 'ip' */
  key?: RateLimitKeySource;
  /** The requests that are exempt. */
  match: RateLimitMatch;
}

/**
 * A proxy's (or a route's) rate limiting: one limit, or classes of clients tried in order (the first
 * that matches a request decides).
 */
export type ProxyRateLimits = ProxyRateLimit | readonly (ProxyRateLimit | ProxyRateLimitExemption)[];

/** One class, checked at construction. */
export interface CompiledRateLimit {
  /** Undefined for an exemption. */
  readonly limiter: RateLimiter | undefined;
  readonly key: RateLimitKeySource;
  readonly bypass: ReadonlySet<string> | undefined;
  readonly headers: HeaderMatchers | undefined;
  readonly keys: ReadonlySet<string> | undefined;
}

function checkKey(value: unknown, option: string): RateLimitKeySource {
  const key = value ?? 'ip';
  if (
    key === 'ip' ||
    typeof key === 'function' ||
    (typeof key === 'string' && key.startsWith('header:') && key.length > 7)
  )
    return key as RateLimitKeySource;
  throw new TypeError(
    `${option}.key must be 'ip', 'header:<name>' or a function, got ${describeValue(value)}`,
  );
}

function checkMatch(
  match: RateLimitMatch | undefined,
  option: string,
): Pick<CompiledRateLimit, 'headers' | 'keys'> {
  if (match === undefined) return { headers: undefined, keys: undefined };
  if (match === null || typeof match !== 'object') throw new TypeError(`${option} must be an object`);
  checkKnownOptions(match, ['headers', 'keys'], option);
  if (match.keys !== undefined && !Array.isArray(match.keys))
    throw new TypeError(`${option}.keys must be an array of client keys`);
  return {
    headers: match.headers === undefined ? undefined : headerMatchers(match.headers, `${option}.headers`),
    keys: match.keys === undefined ? undefined : new Set(match.keys),
  };
}

function checkClass(value: ProxyRateLimit | ProxyRateLimitExemption, option: string): CompiledRateLimit {
  if (value === null || typeof value !== 'object') throw new TypeError(`${option} must be an object`);
  if ('exempt' in value) {
    checkKnownOptions(value, ['exempt', 'key', 'match'], option);
    if (value.exempt !== true) throw new TypeError(`${option}.exempt must be true (or left out)`);
    if (value.match === undefined)
      throw new TypeError(`${option}.match is required: an exemption for every request is no limit at all`);
    return {
      limiter: undefined,
      key: checkKey(value.key, option),
      bypass: undefined,
      ...checkMatch(value.match, `${option}.match`),
    };
  }
  if (typeof value.limiter?.consume !== 'function')
    throw new TypeError(`${option}.limiter must be a RateLimiter`);
  checkKnownOptions(value, ['limiter', 'key', 'bypass', 'match'], option);
  if (value.bypass !== undefined && !Array.isArray(value.bypass))
    throw new TypeError(`${option}.bypass must be an array of keys`);
  return {
    limiter: value.limiter,
    key: checkKey(value.key, option),
    bypass: value.bypass === undefined || value.bypass.length === 0 ? undefined : new Set(value.bypass),
    ...checkMatch(value.match, `${option}.match`),
  };
}

/** Checks the rate limiting of the options: one limit, or a non-empty list of classes. */
export function checkRateLimits(value: ProxyRateLimits, option: string): readonly CompiledRateLimit[] {
  if (!Array.isArray(value)) return [checkClass(value as ProxyRateLimit, option)];
  if (value.length === 0) throw new TypeError(`${option} must not be an empty list (leave it out for none)`);
  return value.map((item, i) => checkClass(item, `${option}[${i}]`));
}

/** The key a class identifies a request's client by. */
export function rateLimitKey(limit: CompiledRateLimit, req: IncomingMessage, client: string): string {
  const key = limit.key;
  if (key === 'ip') return client;
  if (typeof key === 'function') return key(req);
  const raw = req.headers[key.slice(7).toLowerCase()];
  const value = Array.isArray(raw) ? raw[0] : raw;
  return value === undefined || value === '' ? client : value;
}

/**
 * Takes one request from the quota of the first class that matches: the decision, or undefined when
 * no class matches, the class is an exemption, or the key is on its bypass list.
 */
export function consumeRateLimit(
  limits: readonly CompiledRateLimit[],
  req: IncomingMessage,
  client: string,
): Promise<RateLimitDecision> | undefined {
  for (let i = 0; i < limits.length; i++) {
    const limit = limits[i] as CompiledRateLimit;
    if (limit.headers !== undefined && !headersMatch(limit.headers, req.headers)) continue;
    const key = rateLimitKey(limit, req, client);
    if (limit.keys !== undefined && !limit.keys.has(key)) continue;
    if (limit.limiter === undefined || limit.bypass?.has(key) === true) return undefined;
    return limit.limiter.consume(key);
  }
  return undefined;
}
