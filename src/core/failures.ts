/**
 * What went wrong with a call to an upstream, in the terms retries and outlier detection act on:
 * the connection was never made, it broke, or it timed out; or the upstream answered with a status.
 * Errors from `node:net`, undici and `fetch` (which wraps the real error in `cause`) are recognised.
 */
import { isMcgravityError } from './errors.js';

/** How a call failed before a usable response. */
export type FailureKind = 'connect-failure' | 'reset' | 'timeout';

const CONNECT_CODES = new Set([
  'ECONNREFUSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
]);
const RESET_CODES = new Set([
  'ECONNRESET',
  'EPIPE',
  'ECONNABORTED',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  // node:http2: a stream or session cut by the other side
  'ERR_HTTP2_STREAM_ERROR',
  'ERR_HTTP2_SESSION_ERROR',
  'ERR_HTTP2_GOAWAY_SESSION',
  'ERR_HTTP2_INVALID_SESSION',
]);
const TIMEOUT_CODES = new Set([
  'ETIMEDOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'EUPSTREAMTIMEOUT',
]);

/** The failure kind of an error (looking through `cause`), or undefined for anything else. */
export function failureKind(error: unknown): FailureKind | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current !== null && typeof current === 'object'; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') {
      if (CONNECT_CODES.has(code)) return 'connect-failure';
      if (RESET_CODES.has(code)) return 'reset';
      if (TIMEOUT_CODES.has(code)) return 'timeout';
    }
    if ((current as { name?: unknown }).name === 'TimeoutError') return 'timeout';
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * True for an error raised after the upstream had started its response: such a call is never retried.
 * Our own errors say so with `phase`; a caller's error may carry `responseStarted: true`.
 */
export function responseStarted(error: unknown): boolean {
  if (isMcgravityError(error)) return error.phase === 'response-started';
  return (
    error !== null &&
    typeof error === 'object' &&
    (error as { responseStarted?: unknown }).responseStarted === true
  );
}

/**
 * True for an error that proves the call never reached its upstream: the connection was refused or
 * timed out, or the request failed before it was written (`phase: 'unsent'`). Such an attempt can be
 * sent to another endpoint whatever its method.
 */
export function neverSent(error: unknown): boolean {
  if (isMcgravityError(error) && error.phase !== undefined) return error.phase === 'unsent';
  return failureKind(error) === 'connect-failure';
}

/** The HTTP status of a response-like value (undici's `statusCode`, fetch's `status`), if any. */
export function statusOf(value: unknown): number | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const status =
    (value as { statusCode?: unknown; status?: unknown }).statusCode ??
    (value as { status?: unknown }).status;
  return typeof status === 'number' ? status : undefined;
}

/**
 * One header of a response-like value: one with a `header(name)` method (a cluster stream's head,
 * read from its raw list), fetch `Headers`, or undici's plain header object.
 */
export function headerOf(value: unknown, name: string): string | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const reader = (value as { header?: unknown }).header;
  if (typeof reader === 'function') {
    const found: unknown = reader.call(value, name);
    return typeof found === 'string' ? found : undefined;
  }
  const headers = (value as { headers?: unknown }).headers;
  if (headers === null || typeof headers !== 'object') return undefined;
  if (typeof (headers as { get?: unknown }).get === 'function') {
    return (headers as { get(name: string): string | null }).get(name) ?? undefined;
  }
  const raw = (headers as Record<string, unknown>)[name.toLowerCase()];
  if (Array.isArray(raw)) return typeof raw[0] === 'string' ? raw[0] : undefined;
  return typeof raw === 'string' ? raw : undefined;
}

/**
 * Milliseconds a `Retry-After` header asks to wait: delay-seconds or an HTTP date (RFC 9110
 * §10.2.3). Undefined when absent or unreadable.
 * @param nowMs wall-clock time for the date form
 */
export function retryAfterMs(value: string | undefined, nowMs = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}
