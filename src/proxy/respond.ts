/**
 * Every answer the proxy makes itself: a JSON error `{ "error": { "code", "message", "requestId" } }`
 * with the status its code maps to (a gRPC error to a gRPC call), written on a `ServerResponse` (requests) or straight on a socket
 * (malformed requests the HTTP parser refused, and upgrades before the upstream's 101), from one body.
 */
import http, { type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { type ErrorCode, errorStatus, isMcgravityError } from '../core/errors.js';
import { failureKind } from '../core/failures.js';
import { SESSION_NOT_FOUND } from '../mcp/protocol.js';
import { answersGrpc, sendGrpcError } from './grpc.js';

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
  if (answersGrpc(res)) {
    sendGrpcError(res, code, message); // a gRPC client reads grpc-status, not a JSON body
    return;
  }
  const body = errorBody(code, message, requestId);
  res.writeHead(options.status ?? errorStatus[code], {
    ...options.headers,
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  res.end(body);
}

/** The JSON body of every error answer. */
export function errorBody(code: ErrorCode, message: string, requestId: string | undefined): string {
  return JSON.stringify({ error: { code, message, ...(requestId === undefined ? {} : { requestId }) } });
}

/**
 * Writes a JSON error as a whole HTTP/1.1 response on a raw socket and closes it (a socket nobody can
 * write to any more is destroyed).
 */
export function sendSocketError(
  socket: Duplex,
  code: ErrorCode,
  message: string,
  requestId: string | undefined,
  options: { status?: number; headers?: Record<string, string> } = {},
): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const status = options.status ?? errorStatus[code];
  const body = errorBody(code, message, requestId);
  let head = `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}\r\n`;
  for (const [name, value] of Object.entries(options.headers ?? {})) head += `${name}: ${value}\r\n`;
  head += `content-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n`;
  socket.end(head + body);
}

/**
 * The 404 an MCP client understands for a session that cannot be served: a JSON-RPC error with the
 * code the SDK's servers use (-32001), the proxy's own code and request id in its `data`.
 */
export function sendSessionNotFound(
  res: ServerResponse,
  message: string,
  requestId: string | undefined,
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({
    jsonrpc: '2.0',
    id: null,
    error: {
      code: SESSION_NOT_FOUND,
      message: 'Session not found',
      data: { code: 'ESESSIONGONE', reason: message, ...(requestId === undefined ? {} : { requestId }) },
    },
  });
  res.writeHead(404, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  res.end(body);
}
