/**
 * Rate-limit response headers, in both conventions clients look for:
 * - `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (seconds until the quota is whole),
 *   from the IETF httpapi draft "RateLimit header fields for HTTP";
 * - `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` (Unix time in seconds), the
 *   older convention of GitHub and of NGINX-based gateways;
 * - and on a refusal `Retry-After` in whole seconds, at least 1 (RFC 9110 §10.2.3).
 */
import type { RateLimitDecision } from './rules.js';

/** Options of {@link rateLimitHeaders}. */
export interface RateLimitHeaderOptions {
  /** Also write the `X-RateLimit-*` headers. @default true */
  legacy?: boolean;
  /** Wall-clock time in ms for `X-RateLimit-Reset`. @default Date.now() */
  nowMs?: number;
}

/** The headers that describe `decision`, as a plain object of header name to value. */
export function rateLimitHeaders(
  decision: RateLimitDecision,
  options: RateLimitHeaderOptions = {},
): Record<string, string> {
  const resetSeconds = Number.isFinite(decision.resetMs)
    ? Math.ceil(Math.max(0, decision.resetMs) / 1000)
    : 0;
  const headers: Record<string, string> = {
    'RateLimit-Limit': String(decision.limit),
    'RateLimit-Remaining': String(Math.max(0, decision.remaining)),
    'RateLimit-Reset': String(resetSeconds),
  };
  if (options.legacy ?? true) {
    const now = options.nowMs ?? Date.now();
    headers['X-RateLimit-Limit'] = headers['RateLimit-Limit'] as string;
    headers['X-RateLimit-Remaining'] = headers['RateLimit-Remaining'] as string;
    headers['X-RateLimit-Reset'] = String(Math.ceil((now + resetSeconds * 1000) / 1000));
  }
  if (!decision.allowed && Number.isFinite(decision.retryAfterMs)) {
    headers['Retry-After'] = String(Math.max(1, Math.ceil(decision.retryAfterMs / 1000)));
  }
  return headers;
}

/** Writes {@link rateLimitHeaders} onto a response (`node:http` ServerResponse or anything with `setHeader`). */
export function setRateLimitHeaders(
  response: { setHeader(name: string, value: string): unknown },
  decision: RateLimitDecision,
  options?: RateLimitHeaderOptions,
): void {
  for (const [name, value] of Object.entries(rateLimitHeaders(decision, options)))
    response.setHeader(name, value);
}
