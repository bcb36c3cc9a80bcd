/**
 * The proxy's own answers: a JSON error `{ "error": { "code", "message", "requestId" } }` with the
 * status DESIGN.md assigns to each code, and `Retry-After` where it applies.
 */
import type { ServerResponse } from 'node:http';
import { type ErrorCode, errorStatus, isMcgravityError } from '../core/errors.js';
import { failureKind } from '../core/failures.js';

/** Maps any error from the request path to a code and status the client may see. */
export function classify(error: unknown): { code: ErrorCode; status: number; message: string } {
  if (isMcgravityError(error)) return { code: error.code, status: error.statusCode, message: error.message };
  const kind = failureKind(error);
  if (kind === 'timeout') return { code: 'EUPSTREAMTIMEOUT', status: 504, message: 'upstream timed out' };
  if (kind === 'connect-failure')
    return { code: 'EUPSTREAM', status: 502, message: 'upstream refused the connection' };
  if (kind === 'reset') return { code: 'EUPSTREAM', status: 502, message: 'upstream closed the connection' };
  return { code: 'EUPSTREAM', status: 502, message: 'upstream request failed' };
}

/** Writes a JSON error, unless the response has already started (then the socket is cut instead). */
export function sendError(
  res: ServerResponse,
  code: ErrorCode,
  message: string,
  requestId: string | undefined,
  options: { status?: number; headers?: Record<string, string> } = {},
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({
    error: { code, message, ...(requestId === undefined ? {} : { requestId }) },
  });
  res.writeHead(options.status ?? errorStatus[code], {
    ...options.headers,
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  res.end(body);
}
