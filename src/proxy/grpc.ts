/**
 * gRPC through the proxy. A gRPC call is an HTTP/2 POST with `content-type: application/grpc`,
 * length-prefixed messages both ways, and its outcome in trailers (`grpc-status`, `grpc-message`),
 * so most of it needs nothing but HTTP/2 both ways with trailers intact. What the proxy does on top:
 *
 * - **Its own errors are gRPC errors.** A gRPC client reads no JSON body and treats an HTTP 503 as a
 *   protocol error: the proxy answers "Trailers-Only" (one HEADERS frame that ends the stream,
 *   HTTP 200, `grpc-status` and a percent-encoded `grpc-message`), with the status its code means
 *   (`UNAVAILABLE` for no upstream or an open circuit, `DEADLINE_EXCEEDED` for a timeout,
 *   `RESOURCE_EXHAUSTED` for a rate limit…).
 * - **Trailers-Only answers from a backend** are relayed as they came: headers that end the stream
 *   (Node's compatibility response would send an empty DATA frame after them, which gRPC clients
 *   reject).
 * - **Deadlines.** `grpc-timeout` bounds the wait for the response headers (then the client gets
 *   `DEADLINE_EXCEEDED`); it is forwarded as it came, so the backend sees the deadline too.
 * - **Retries** (see the proxy): only before any response, and on a Trailers-Only `UNAVAILABLE`;
 *   never once a message was relayed.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ServerHttp2Stream } from 'node:http2';
import { Writable } from 'node:stream';
import type { ErrorCode } from '../core/errors.js';

/** gRPC status codes (grpc/doc/statuscodes.md). */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

/** The gRPC status of each of the proxy's error codes. */
const STATUS_OF: Readonly<Record<ErrorCode, number>> = {
  ENOUPSTREAM: GrpcStatus.UNAVAILABLE,
  ECIRCUITOPEN: GrpcStatus.UNAVAILABLE,
  EOVERLOADED: GrpcStatus.UNAVAILABLE,
  ERETRYBUDGET: GrpcStatus.UNAVAILABLE,
  ECLOSED: GrpcStatus.UNAVAILABLE,
  EUPSTREAM: GrpcStatus.UNAVAILABLE,
  EUPSTREAMTIMEOUT: GrpcStatus.DEADLINE_EXCEEDED,
  ERATELIMITED: GrpcStatus.RESOURCE_EXHAUSTED,
  EBODYTOOLARGE: GrpcStatus.RESOURCE_EXHAUSTED,
  EBADREQUEST: GrpcStatus.INTERNAL,
  EINTERNAL: GrpcStatus.INTERNAL,
  EABORTED: GrpcStatus.CANCELLED,
  EREQUESTTIMEOUT: GrpcStatus.CANCELLED,
  ESESSIONGONE: GrpcStatus.NOT_FOUND,
  ENOTFOUND: GrpcStatus.UNIMPLEMENTED,
  EMETHOD: GrpcStatus.UNIMPLEMENTED,
  EUNAUTHORIZED: GrpcStatus.UNAUTHENTICATED,
  EFORBIDDEN: 7, // PERMISSION_DENIED
};

/** A gRPC request: `application/grpc` or `application/grpc+proto` (not gRPC-Web, which is HTTP/1 friendly). */
export function isGrpc(req: IncomingMessage): boolean {
  const type = req.headers['content-type'];
  return (
    typeof type === 'string' &&
    type.startsWith('application/grpc') &&
    (type.length === 16 || type.charCodeAt(16) === 43 /* + */ || type.charCodeAt(16) === 59) /* ; */
  );
}

const UNITS: Readonly<Record<string, number>> = {
  H: 3_600_000,
  M: 60_000,
  S: 1000,
  m: 1,
  u: 0.001,
  n: 0.000_001,
};

/** The call's deadline from `grpc-timeout` (`100m`, `5S`, `1H`…) in milliseconds, or undefined. */
export function grpcTimeoutMs(req: IncomingMessage): number | undefined {
  const value = req.headers['grpc-timeout'];
  if (typeof value !== 'string') return undefined;
  const match = /^(\d{1,8})([HMSmun])$/.exec(value);
  if (match === null) return undefined;
  return Math.max(1, Math.ceil(Number(match[1]) * (UNITS[match[2] as string] as number)));
}

/** The gRPC status an error code of the proxy stands for. */
export function grpcStatusOf(code: ErrorCode): number {
  return STATUS_OF[code] ?? GrpcStatus.UNKNOWN;
}

/** `grpc-message` encoding: percent-encode anything outside printable ASCII, and `%` itself. */
export function encodeGrpcMessage(message: string): string {
  let out = '';
  for (const byte of Buffer.from(message, 'utf8')) {
    out +=
      byte >= 0x20 && byte <= 0x7e && byte !== 0x25
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** True when `res` answers a gRPC request (whose errors must be gRPC errors). */
export function answersGrpc(res: ServerResponse): boolean {
  const req = (res as ServerResponse & { req?: IncomingMessage }).req;
  return req !== undefined && isGrpc(req);
}

/**
 * Answers Trailers-Only: status 200 and `headers` in one HEADERS frame that ends the stream (HTTP/2),
 * or a bodiless response (HTTP/1.1), keeping headers already set on `res` (the request id, rate-limit
 * headers).
 */
export function sendTrailersOnly(
  res: ServerResponse,
  headers: Record<string, string | string[] | undefined>,
): void {
  const all: Record<string, string | string[] | number | undefined> = { ...res.getHeaders(), ...headers };
  const stream = (res as unknown as { stream?: ServerHttp2Stream }).stream;
  if (stream !== undefined && !stream.headersSent && !stream.destroyed) {
    stream.respond({ ...all, ':status': 200 }, { endStream: true });
    return;
  }
  res.writeHead(200, all as Record<string, string | string[]>);
  res.end();
}

/** Answers a gRPC request with the gRPC error for `code`. */
export function sendGrpcError(res: ServerResponse, code: ErrorCode, message: string): void {
  sendTrailersOnly(res, {
    'content-type': 'application/grpc',
    'grpc-status': String(grpcStatusOf(code)),
    'grpc-message': encodeGrpcMessage(message),
  });
}

/** Where a Trailers-Only answer's (empty) body goes once its headers were sent. */
export function trailersOnlySink(): Writable {
  return new Writable({
    write(_chunk, _encoding, done) {
      done();
    },
  });
}
