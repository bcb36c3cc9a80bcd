/**
 * The one error base of mcgravity. Every error the library raises on a request path is a
 * {@link McgravityError} with a stable {@link ErrorCode}, so callers branch on `code`, never on the
 * message, and the proxy maps it to an HTTP status without guessing.
 */

/** Stable error codes. New codes may be added; existing ones never change meaning. */
export type ErrorCode =
  /** No eligible endpoint was left to pick (all unhealthy, ejected, draining or excluded). */
  | 'ENOUPSTREAM'
  /** The circuit breaker is open (or half-open and already probing) and refused the call. */
  | 'ECIRCUITOPEN'
  /** A rate limit refused the request. */
  | 'ERATELIMITED'
  /** The upstream did not answer within the configured timeout. */
  | 'EUPSTREAMTIMEOUT'
  /** The upstream failed: connection refused or reset, or an unusable response. */
  | 'EUPSTREAM'
  /** A queue or concurrency bound is full. */
  | 'EOVERLOADED'
  /** The retry budget is spent: the retry was not attempted. */
  | 'ERETRYBUDGET'
  /** The request body exceeds the configured bound. */
  | 'EBODYTOOLARGE'
  /** The request is malformed. */
  | 'EBADREQUEST'
  /** The component was closed. */
  | 'ECLOSED'
  /** The operation was aborted by its caller. */
  | 'EABORTED'
  /** An unexpected failure inside mcgravity or a user callback (a bug to report). */
  | 'EINTERNAL'
  /**
   * The endpoint that owns a session (an MCP session) is gone: removed, down by active checks, or
   * refusing connections. HTTP 404, which tells an MCP client to initialise a new session.
   */
  | 'ESESSIONGONE'
  /** The caller must authenticate (the admin API's bearer token is missing or wrong). */
  | 'EUNAUTHORIZED'
  /** The operation is not allowed here (the admin API has no token configured for changes). */
  | 'EFORBIDDEN'
  /** The named thing (a cluster, a backend, a path) does not exist. */
  | 'ENOTFOUND'
  /** The method is not allowed on this path. */
  | 'EMETHOD'
  /** The client was too slow: its request head or body did not arrive in time (HTTP 408). */
  | 'EREQUESTTIMEOUT';

/** The HTTP status each code maps to when it ends a proxied request. */
export const errorStatus: Readonly<Record<ErrorCode, number>> = {
  ENOUPSTREAM: 503,
  ECIRCUITOPEN: 503,
  ERATELIMITED: 429,
  EUPSTREAMTIMEOUT: 504,
  EUPSTREAM: 502,
  EOVERLOADED: 503,
  ERETRYBUDGET: 503,
  EBODYTOOLARGE: 413,
  EBADREQUEST: 400,
  ECLOSED: 503,
  EABORTED: 499,
  EINTERNAL: 500,
  ESESSIONGONE: 404,
  EUNAUTHORIZED: 401,
  EFORBIDDEN: 403,
  ENOTFOUND: 404,
  EMETHOD: 405,
  EREQUESTTIMEOUT: 408,
};

/** Options of {@link McgravityError}. */
export interface McgravityErrorOptions {
  /** The underlying error, kept as the standard `cause`. */
  cause?: unknown;
  /** Overrides the HTTP status that {@link errorStatus} maps the code to. */
  statusCode?: number;
  /** Where an upstream call failed, when it matters for retries: see {@link McgravityError.phase}. */
  phase?: UpstreamPhase;
}

/**
 * How far an upstream call had got when it failed: `'unsent'` never reached the upstream (safe to
 * send elsewhere, whatever the method), `'response-started'` failed after the answer had begun
 * (never retried).
 */
export type UpstreamPhase = 'unsent' | 'response-started';

/** An error with a stable `code` and the HTTP `statusCode` it maps to. */
export class McgravityError extends Error {
  /** Stable, machine-readable code. */
  readonly code: ErrorCode;
  /** HTTP status for this error when it ends a proxied request. */
  readonly statusCode: number;
  /** Where the upstream call failed, when the error says so. */
  readonly phase: UpstreamPhase | undefined;
  /**
   * Tries a cluster call made before it failed with this error, when it went through the retry
   * machinery (an error of a call without retries leaves it undefined: one try, or none).
   */
  attempts: number | undefined;

  constructor(code: ErrorCode, message: string, options: McgravityErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'McgravityError';
    this.code = code;
    this.statusCode = options.statusCode ?? errorStatus[code];
    this.phase = options.phase;
    this.attempts = undefined;
  }
}

/** True when `value` is a {@link McgravityError}, optionally with the given code. */
export function isMcgravityError(value: unknown, code?: ErrorCode): value is McgravityError {
  return value instanceof McgravityError && (code === undefined || value.code === code);
}
