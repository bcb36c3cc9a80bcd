/**
 * The gRPC health check (grpc/doc/health-checking.md): a unary call of
 * `grpc.health.v1.Health/Check` with a service name, which passes when the answer is `SERVING`.
 * An `http:` endpoint is called over cleartext HTTP/2 (h2c), an `https:` one over TLS with ALPN
 * `h2`. Each check opens its own connection and closes it, so that a check also proves that a new
 * connection can be made.
 *
 * The two protobuf messages are small enough to write and read by hand:
 * `HealthCheckRequest { string service = 1; }` and `HealthCheckResponse { ServingStatus status = 1; }`
 * (UNKNOWN 0, SERVING 1, NOT_SERVING 2, SERVICE_UNKNOWN 3).
 */
import http2 from 'node:http2';
import type { ConnectionOptions } from 'node:tls';
import { httpOrigin } from '../core/endpoint.js';
import { checkKnownOptions, describeValue } from '../core/validate.js';
import type { HealthCheckFunction } from './HealthMonitor.js';

/** Options of {@link grpcCheck}. */
export interface GrpcCheckOptions {
  /** The service whose health is asked; '' asks about the server as a whole. @default '' */
  service?: string;
  /** TLS settings for `https:` endpoints (a CA, `servername`, `rejectUnauthorized`). */
  tls?: ConnectionOptions;
}

const SERVING_STATUS = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'];

/** A failed gRPC health check's reason. */
class GrpcCheckFailure extends Error {}

/**
 * A health check calling `grpc.health.v1.Health/Check` on each endpoint.
 * @example createCluster({ backends, pool: { protocol: 'h2c' }, health: { check: grpcCheck({ service: 'echo.Echo' }), intervalMs: 5000 } })
 */
export function grpcCheck(options: GrpcCheckOptions = {}): HealthCheckFunction {
  if (options === null || typeof options !== 'object') throw new TypeError('grpcCheck needs options or none');
  checkKnownOptions(options, ['service', 'tls'], 'grpcCheck');
  const service = options.service ?? '';
  if (typeof service !== 'string')
    throw new TypeError(`service must be a string, got ${describeValue(service)}`);
  const request = frame(encodeRequest(service));
  const tls = options.tls;
  return (endpoint, signal) =>
    new Promise<boolean>((resolve, reject) => {
      const origin = httpOrigin(endpoint.url);
      const session = http2.connect(
        origin,
        origin.startsWith('https:') ? { ...tls, ALPNProtocols: ['h2'] } : {},
      );
      const done = (error?: Error) => {
        signal.removeEventListener('abort', onAbort);
        session.close();
        if (error === undefined) resolve(true);
        else reject(error);
      };
      const onAbort = () => {
        session.destroy();
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      session.on('error', (error) => done(error));
      const stream = session.request({
        ':method': 'POST',
        ':path': '/grpc.health.v1.Health/Check',
        'content-type': 'application/grpc',
        te: 'trailers',
      });
      const chunks: Buffer[] = [];
      let status: string | undefined;
      let message: string | undefined;
      const readStatus = (headers: http2.IncomingHttpHeaders) => {
        if (headers['grpc-status'] !== undefined) {
          status = String(headers['grpc-status']);
          message =
            headers['grpc-message'] === undefined
              ? undefined
              : decodeURIComponent(String(headers['grpc-message']));
        }
      };
      stream.on('response', readStatus);
      stream.on('trailers', readStatus);
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      let streamError: Error | undefined;
      stream.on('error', (error: Error) => {
        streamError = error; // 'close' decides
      });
      stream.on('close', () => {
        if (status === undefined) {
          // A connection that could not be made cancels the stream with the reason as its cause.
          const cause = (streamError as (Error & { cause?: unknown }) | undefined)?.cause;
          if (cause instanceof Error) done(cause);
          else done(new GrpcCheckFailure(`no grpc-status (stream closed with code ${stream.rstCode})`));
          return;
        }
        if (status !== '0') {
          done(new GrpcCheckFailure(`grpc-status ${status}${message === undefined ? '' : `: ${message}`}`));
          return;
        }
        const serving = decodeStatus(Buffer.concat(chunks));
        done(
          serving === 1 ? undefined : new GrpcCheckFailure(SERVING_STATUS[serving] ?? `status ${serving}`),
        );
      });
      stream.end(request);
    });
}

/** `HealthCheckRequest { service }`: field 1, length-delimited; an empty service is an empty message. */
function encodeRequest(service: string): Buffer {
  if (service === '') return Buffer.alloc(0);
  const bytes = Buffer.from(service, 'utf8');
  return Buffer.concat([Buffer.from([0x0a]), varint(bytes.length), bytes]);
}

function varint(value: number): Buffer {
  const out: number[] = [];
  let rest = value;
  while (rest > 0x7f) {
    out.push((rest & 0x7f) | 0x80);
    rest >>>= 7;
  }
  out.push(rest);
  return Buffer.from(out);
}

/** A gRPC message on the wire: not compressed, its length, the bytes. */
function frame(message: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

/** The `status` of a framed `HealthCheckResponse` (0, UNKNOWN, when absent). */
function decodeStatus(body: Buffer): number {
  if (body.length < 5) return 0;
  const message = body.subarray(5, 5 + body.readUInt32BE(1));
  const at = { offset: 0 };
  while (at.offset < message.length) {
    const tag = readVarint(message, at);
    if (tag >> 3 === 1 && (tag & 7) === 0) return readVarint(message, at);
    if ((tag & 7) === 0) readVarint(message, at);
    else if ((tag & 7) === 2) at.offset += readVarint(message, at);
    else return 0; // a field type HealthCheckResponse does not have
  }
  return 0;
}

/** Reads a base-128 varint at `at.offset`, moving it on. */
function readVarint(bytes: Buffer, at: { offset: number }): number {
  let value = 0;
  let shift = 0;
  while (at.offset < bytes.length) {
    const byte = bytes[at.offset++] as number;
    value += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) break;
    shift += 7;
  }
  return value;
}
