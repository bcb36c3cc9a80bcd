/**
 * HTTP/2 in front of the proxy. Node's HTTP/2 server hands the same handler compatibility objects
 * (`Http2ServerRequest`, `Http2ServerResponse`) that look like HTTP/1.1's, and HTTP/1.1 clients on a
 * TLS port are still served (ALPN picks `h2` or `http/1.1`). What differs, and is translated here:
 *
 * - **Pseudo-headers.** `:method`, `:path`, `:scheme` and `:authority` are never forwarded; the
 *   authority becomes `Host` (RFC 9113 §8.3.1), so routes, `X-Forwarded-Host` and the upstream see
 *   the host an HTTP/1.1 client would have sent.
 * - **Connection headers.** HTTP/2 has none (§8.2.2): hop-by-hop headers are stripped both ways as
 *   for HTTP/1.1, and `Connection: close` is never set on an HTTP/2 response (the stream ends alone).
 * - **Bodies** have no `Transfer-Encoding`: a request has one unless its headers ended the stream.
 * - **Stream resets.** A client that resets its stream cancels the upstream request at once, even
 *   before the answer started (an HTTP/1.1 client that leaves is noticed when the answer comes).
 * - **Streams are independent**: no pipelining order applies between them.
 *
 * Servers: `listenerServer()` makes the server `listen()` uses (HTTP/1.1, HTTPS, HTTPS with HTTP/2,
 * or cleartext HTTP/2 with prior knowledge), with the stream and header limits as HTTP/2 settings.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import type { Writable } from 'node:stream';
import type { SecureContextOptions } from 'node:tls';
import { type Duration, optionalDuration } from '../core/duration.js';
import { checkKnownOptions, describeValue, optionalNumber } from '../core/validate.js';
import { writableCompleted } from '../core/writable.js';

/** HTTP/2 settings of the proxy's listeners. */
export interface Http2ListenOptions {
  /**
   * Serve HTTP/2 in cleartext (h2c with prior knowledge) when there is no `tls`: such a port speaks
   * HTTP/2 only, as gRPC clients and sidecars expect. @default false
   */
  cleartext?: boolean;
  /** Streams a client may have open at once on one connection (`SETTINGS_MAX_CONCURRENT_STREAMS`). @default 128 */
  maxConcurrentStreams?: number;
  /**
   * Largest header list of a request, as HTTP/2 counts it (each name and value plus 32 bytes,
   * `SETTINGS_MAX_HEADER_LIST_SIZE`); a larger one is refused. @default the proxy's `maxHeaderBytes`
   */
  maxHeaderListBytes?: number;
  /** A connection with no frame either way for this long is closed with GOAWAY. @default 120_000 */
  idleMs?: Duration;
}

/** TLS for `listen()`: a certificate and its key, and any other `tls.createSecureContext` option. */
export type ProxyTlsOptions = SecureContextOptions;

/** A server the proxy can serve on. */
export type ProxyServer = http.Server | https.Server | http2.Http2SecureServer | http2.Http2Server;

/** What listenerServer() needs of the settings. */
export interface ListenerSettings {
  readonly tls: ProxyTlsOptions | undefined;
  readonly http2: ResolvedHttp2 | undefined;
  readonly maxHeaderBytes: number;
  readonly clientHeadersMs: number;
}

/** {@link Http2ListenOptions} with defaults applied. */
export interface ResolvedHttp2 {
  readonly cleartext: boolean;
  readonly maxConcurrentStreams: number;
  readonly maxHeaderListBytes: number;
  readonly idleMs: number;
}

/** A request that came over HTTP/2 (a compatibility `Http2ServerRequest`). */
export function isHttp2(req: IncomingMessage): boolean {
  return req.httpVersionMajor === 2;
}

/** The response of an HTTP/2 request: its stream, or undefined for HTTP/1.x. */
function streamOf(res: ServerResponse): http2.ServerHttp2Stream | undefined {
  return (res as unknown as { stream?: http2.ServerHttp2Stream }).stream;
}

/**
 * True when nothing more can be written to `res`: destroyed, or (HTTP/2, whose compatibility
 * response has no `destroyed`) its stream closed or reset.
 */
export function responseGone(res: ServerResponse): boolean {
  if (res.destroyed) return true;
  const stream = streamOf(res);
  return stream?.destroyed === true;
}

/**
 * What the response factory hands the relay for a response already gone: a destroyed Writable, so
 * that the upstream request is aborted at once (an HTTP/2 compatibility response is never
 * `destroyed` itself; its stream is).
 */
export function goneWritable(res: ServerResponse): Writable {
  return streamOf(res) ?? res;
}

/** Asks the client to close the connection after this response; HTTP/2 has no such header. */
export function closeAfter(res: ServerResponse): void {
  if (streamOf(res) === undefined) res.setHeader('connection', 'close');
}

/**
 * Gives an HTTP/2 request the `Host` header HTTP/1.1 would have (from `:authority`), once, at
 * entry, so that everything after reads one shape.
 */
export function adoptAuthority(req: IncomingMessage): void {
  const headers = req.headers;
  if (headers.host === undefined) {
    const authority = headers[':authority'];
    if (typeof authority === 'string') headers.host = authority;
  }
}

/** Whether an HTTP/2 request has a body: its headers did not end the stream. */
export function http2HasBody(req: IncomingMessage): boolean {
  const stream = (req as unknown as { stream?: http2.ServerHttp2Stream }).stream;
  return stream?.endAfterHeaders === false;
}

/**
 * An AbortSignal that fires when an HTTP/2 client resets its stream (or the connection goes) before
 * the response ended, so that the upstream request is cancelled at once.
 */
export function resetSignal(res: ServerResponse): AbortSignal {
  const controller = new AbortController();
  res.once('close', () => {
    if (!writableCompleted(res)) controller.abort();
  });
  return controller.signal;
}

/**
 * True when an HTTP/2 request's header list is larger than `limit`, counted as HTTP/2 counts it
 * (RFC 9113 §6.5.2: each name and value, plus 32 bytes). Node advertises the limit in its settings
 * but does not refuse a client that ignores it, so the proxy does (431).
 */
export function headerListOver(req: IncomingMessage, limit: number): boolean {
  const raw = req.rawHeaders;
  let size = 0;
  for (let i = 0; i < raw.length; i++) size += (raw[i] as string).length + 16;
  return size > limit;
}

/** Checks `http2` and fills in its defaults; undefined when HTTP/2 is off for `listen()`. */
export function resolveHttp2(
  option: boolean | Http2ListenOptions | undefined,
  tls: ProxyTlsOptions | undefined,
  maxHeaderBytes: number,
): ResolvedHttp2 | undefined {
  if (option === false || (option === undefined && tls === undefined)) return undefined;
  if (option !== undefined && option !== true && (option === null || typeof option !== 'object')) {
    throw new TypeError(`http2 must be true, false or HTTP/2 options, got ${describeValue(option)}`);
  }
  const options: Http2ListenOptions = typeof option === 'object' ? option : {};
  checkKnownOptions(options, ['cleartext', 'maxConcurrentStreams', 'maxHeaderListBytes', 'idleMs'], 'http2');
  const cleartext = options.cleartext === true;
  if (!cleartext && tls === undefined) {
    throw new TypeError('http2 needs tls (HTTP/2 over TLS), or cleartext: true for HTTP/2 without TLS (h2c)');
  }
  if (cleartext && tls !== undefined) {
    throw new TypeError('http2.cleartext and tls exclude each other: with tls, HTTP/2 is negotiated by ALPN');
  }
  return {
    cleartext,
    maxConcurrentStreams: optionalNumber(options.maxConcurrentStreams, 'http2.maxConcurrentStreams', 128, {
      min: 1,
      integer: true,
    }),
    maxHeaderListBytes: optionalNumber(
      options.maxHeaderListBytes,
      'http2.maxHeaderListBytes',
      maxHeaderBytes,
      {
        min: 1024,
        integer: true,
      },
    ),
    idleMs: optionalDuration(options.idleMs, 'http2.idleMs', 120_000),
  };
}

/** The server `listen()` serves on, as the settings ask. */
export function listenerServer(settings: ListenerSettings): ProxyServer {
  const checkingInterval = Math.max(100, Math.min(1000, settings.clientHeadersMs / 4));
  const h2 = settings.http2;
  if (h2 === undefined) {
    const options = { maxHeaderSize: settings.maxHeaderBytes, connectionsCheckingInterval: checkingInterval };
    return settings.tls === undefined
      ? http.createServer(options)
      : https.createServer({ ...settings.tls, ...options });
  }
  const http2Settings: http2.Settings = {
    maxConcurrentStreams: h2.maxConcurrentStreams,
    maxHeaderListSize: h2.maxHeaderListBytes,
  };
  if (h2.cleartext) return http2.createServer({ settings: http2Settings });
  return http2.createSecureServer({
    ...settings.tls,
    allowHTTP1: true,
    settings: http2Settings,
    // HTTP/1.1 clients on the same port get the same head limit as on an HTTP/1.1 listener.
    maxHeaderSize: settings.maxHeaderBytes,
  } as http2.SecureServerOptions);
}

/** True for a server made by `node:http2` (it has no HTTP/1.1 connection bookkeeping of its own). */
export function isHttp2Server(server: ProxyServer): server is http2.Http2SecureServer | http2.Http2Server {
  return typeof (server as http.Server).closeAllConnections !== 'function';
}
