/**
 * HTTP/2 connections to one backend (`h2` over TLS, or `h2c` in cleartext with prior knowledge),
 * as an undici `Dispatcher`: many streams over few connections. A new connection is opened only
 * when every open one carries as many streams as the backend allows (its
 * `SETTINGS_MAX_CONCURRENT_STREAMS`, capped by `maxConcurrentStreams`), up to `connections`; beyond
 * that, requests wait in order.
 *
 * Built on `node:http2` sessions rather than undici's HTTP/2 client because of GOAWAY. A backend
 * that shuts down gracefully, or rotates its connections (gRPC servers do, with
 * `max_connection_age`), sends GOAWAY with the last stream it will process. RFC 9113 §6.8 lets
 * every stream up to that one finish, and refuses the later ones, which are safe to send again
 * anywhere. undici 7 fails every stream in flight on that connection instead. Here:
 *
 * - streams the backend accepted finish on the old connection;
 * - refused streams (`REFUSED_STREAM`) were never processed: sent again on another connection
 *   (up to 3 times, when the body can be sent again), then failed as `unsent`, which the cluster
 *   sends to another endpoint whatever the method;
 * - the connection takes no new stream, and the next request opens a fresh one.
 *
 * Requests come in through `dispatch()` with either of undici's handler interfaces, so `request()`,
 * `stream()`, `fetch()` and the proxy's relay all work over it.
 */
import { validateHeaderName } from 'node:http';
import http2 from 'node:http2';
import { Readable } from 'node:stream';
import type { ConnectionOptions } from 'node:tls';
import { Dispatcher } from 'undici';
import { isWholeBody, keptCopyOf } from '../core/body.js';
import { McgravityError } from '../core/errors.js';
import { aborted, type Handler, newStyle, StreamController } from './dispatchHandlers.js';

const {
  HTTP2_HEADER_AUTHORITY,
  HTTP2_HEADER_METHOD,
  HTTP2_HEADER_PATH,
  HTTP2_HEADER_SCHEME,
  HTTP2_HEADER_STATUS,
  NGHTTP2_CANCEL,
  NGHTTP2_REFUSED_STREAM,
} = http2.constants;

/** Headers a connection owns in HTTP/2 (RFC 9113 §8.2.2): never sent on a stream. */
const CONNECTION_HEADERS = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'host',
]);

/** Options of {@link Http2Pool}. */
export interface Http2PoolOptions {
  /** Most connections. */
  readonly connections: number;
  /** Most streams on one connection, below what the backend allows. */
  readonly maxConcurrentStreams: number;
  readonly connectTimeoutMs: number;
  /** A connection with no stream for this long is closed. */
  readonly keepAliveTimeoutMs: number;
  /** TLS settings for `h2` (a CA, `servername`, a client certificate…). */
  readonly tls?: ConnectionOptions | undefined;
}

/** One connection and its streams. */
interface Session {
  readonly session: http2.ClientHttp2Session;
  connected: boolean;
  /** GOAWAY received or sent: no new streams. */
  draining: boolean;
  streams: number;
  idleTimer: NodeJS.Timeout | undefined;
}

/** One request, from dispatch to its end, across the streams it may take (a refused one is sent again). */
interface Exchange {
  readonly options: Dispatcher.DispatchOptions;
  readonly handler: Handler;
  /** What is sent: the options' body, or after a refusal the copy a streamed body kept of itself. */
  body: Dispatcher.DispatchOptions['body'];
  /** Made at its first stream; the handler keeps it across a re-send. */
  controller: StreamController | undefined;
  /** Streams the backend refused so far. */
  refusals: number;
}

/** A refused stream is sent again on another connection this many times before it fails as unsent. */
const MAX_REFUSALS = 3;

/** HTTP/2 connections to one origin; see the module comment. */
export class Http2Pool extends Dispatcher {
  readonly #origin: URL;
  readonly #authority: string;
  readonly #options: Http2PoolOptions;
  readonly #sessions = new Set<Session>();
  readonly #queue: Exchange[] = [];
  #closed = false;
  #destroyed = false;
  #closing: (() => void) | undefined;
  #connectionsOpened = 0;
  #resent = 0;

  constructor(origin: string, options: Http2PoolOptions) {
    super();
    this.#origin = new URL(origin);
    this.#authority = this.#origin.host;
    this.#options = options;
  }

  /** Connections opened since the pool was made. */
  get connectionsOpened(): number {
    return this.#connectionsOpened;
  }

  /** Requests sent again on another connection because the backend refused their stream. */
  get resent(): number {
    return this.#resent;
  }

  /** undici-style counters: connections, those with no stream, requests waiting, streams open. */
  get stats(): { connected: number; free: number; pending: number; running: number } {
    let connected = 0;
    let free = 0;
    let running = 0;
    for (const entry of this.#sessions) {
      if (!entry.connected) continue;
      connected++;
      if (entry.streams === 0) free++;
      running += entry.streams;
    }
    return { connected, free, pending: this.#queue.length, running };
  }

  override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const wrapped = newStyle(handler);
    if (this.#closed || this.#destroyed) {
      wrapped.onResponseError?.(
        aborted(),
        new McgravityError('ECLOSED', `${this.#origin.origin}: the pool is closed`),
      );
      return false;
    }
    this.#send({ options, handler: wrapped, body: options.body, controller: undefined, refusals: 0 });
    return true;
  }

  /** Lets open streams finish, then closes every connection; waiting requests are still sent. */
  override close(): Promise<void>;
  override close(callback: () => void): void;
  override close(callback?: () => void): Promise<void> | void {
    this.#closed = true;
    const done = new Promise<void>((resolve) => {
      this.#closing = resolve;
      this.#closeIdle();
    });
    if (callback === undefined) return done;
    void done.then(callback);
  }

  /** Closes every connection now, failing streams in flight and requests waiting. */
  override destroy(): Promise<void>;
  override destroy(error: Error | null): Promise<void>;
  override destroy(callback: () => void): void;
  override destroy(error: Error | null, callback: () => void): void;
  override destroy(
    errorOrCallback?: Error | null | (() => void),
    callback?: () => void,
  ): Promise<void> | void {
    const error = typeof errorOrCallback === 'function' ? null : (errorOrCallback ?? null);
    const done = typeof errorOrCallback === 'function' ? errorOrCallback : callback;
    this.#destroyed = this.#closed = true;
    const reason = error ?? new McgravityError('ECLOSED', `${this.#origin.origin}: the pool was destroyed`);
    for (const exchange of this.#queue.splice(0)) failQueued(exchange, reason);
    for (const entry of this.#sessions) entry.session.destroy();
    this.#sessions.clear();
    this.#closing?.();
    if (done === undefined) return Promise.resolve();
    queueMicrotask(done);
  }

  /** A connected session with room for a stream, or a new one being opened; undefined when full. */
  #available(): Session | undefined {
    let connecting: Session | undefined;
    for (const entry of this.#sessions) {
      if (entry.draining) continue;
      if (!entry.connected) {
        connecting ??= entry;
        continue;
      }
      if (entry.streams < this.#limitOf(entry)) return entry;
    }
    if (this.#sessions.size < this.#options.connections && connecting === undefined) return this.#connect();
    return undefined;
  }

  #limitOf(entry: Session): number {
    const remote = entry.session.remoteSettings.maxConcurrentStreams ?? this.#options.maxConcurrentStreams;
    return Math.min(remote, this.#options.maxConcurrentStreams);
  }

  #connect(): Session {
    const tls = this.#origin.protocol === 'https:';
    const session = http2.connect(this.#origin, {
      ...(tls ? { ...this.#options.tls, ALPNProtocols: ['h2'] } : {}),
      // A backend's refusals are answers to streams; the session only sets our side's limits.
      settings: { enablePush: false },
    });
    this.#connectionsOpened++;
    const entry: Session = { session, connected: false, draining: false, streams: 0, idleTimer: undefined };
    this.#sessions.add(entry);
    const timeout = setTimeout(() => {
      session.destroy(
        Object.assign(new Error(`connect to ${this.#origin.host} timed out`), {
          code: 'UND_ERR_CONNECT_TIMEOUT',
        }),
      );
    }, this.#options.connectTimeoutMs);
    session.once('connect', () => {
      clearTimeout(timeout);
      entry.connected = true;
      this.#drainQueue();
      this.#idleIfUnused(entry);
    });
    session.on('goaway', () => {
      entry.draining = true;
      this.#drainQueue(); // what waited goes to another connection
    });
    session.on('error', (error: Error) => {
      clearTimeout(timeout);
      if (!entry.connected) this.#failQueueOnConnect(error);
    });
    session.once('close', () => {
      clearTimeout(timeout);
      clearTimeout(entry.idleTimer);
      this.#sessions.delete(entry);
      if (this.#closed && this.#sessions.size === 0) this.#closing?.();
      else this.#drainQueue();
    });
    return entry;
  }

  /** A connection that could not be opened fails the requests that waited for it. */
  #failQueueOnConnect(error: Error): void {
    if (this.#sessions.size > 1) return; // another connection is open or opening: they wait for it
    for (const exchange of this.#queue.splice(0)) failQueued(exchange, error);
  }

  #drainQueue(): void {
    while (this.#queue.length > 0) {
      const session = this.#available();
      if (session === undefined || !session.connected) return;
      this.#start(session, this.#queue.shift() as Exchange);
    }
  }

  #closeIdle(): void {
    for (const entry of this.#sessions) if (entry.streams === 0) entry.session.close();
    if (this.#sessions.size === 0) this.#closing?.();
  }

  #idleIfUnused(entry: Session): void {
    clearTimeout(entry.idleTimer);
    if (entry.streams > 0) return;
    if (this.#closed && this.#queue.length === 0) {
      entry.session.close();
      return;
    }
    entry.idleTimer = setTimeout(() => entry.session.close(), this.#options.keepAliveTimeoutMs);
    entry.idleTimer.unref();
  }

  /** Sends an exchange on a connection with room, or queues it until one has. */
  #send(exchange: Exchange): void {
    const session = this.#available();
    if (session === undefined) this.#queue.push(exchange);
    else this.#start(session, exchange);
  }

  #start(entry: Session, exchange: Exchange): void {
    if (!entry.connected) {
      this.#queue.push(exchange);
      return;
    }
    clearTimeout(entry.idleTimer);
    const { options, handler } = exchange;
    const body = exchange.body;
    let stream: http2.ClientHttp2Stream;
    try {
      const scheme = this.#origin.protocol === 'https:' ? 'https' : 'http';
      const headers = requestHeaders(options, this.#authority, scheme);
      stream = entry.session.request(headers, { endStream: body === null || body === undefined });
    } catch (error) {
      if (sessionGone(error)) {
        // The session went away between the choice and the request (GOAWAY, close): another one.
        entry.draining = true;
        this.#send(exchange);
      } else {
        // The request itself is refused (a header name that is no HTTP token): it fails, alone.
        this.#idleIfUnused(entry);
        failQueued(exchange, error as Error);
      }
      return;
    }
    entry.streams++;
    const first = exchange.controller === undefined;
    const controller = exchange.controller ?? new StreamController();
    exchange.controller = controller;
    controller.stream = stream;
    let answered = false;
    let finished = false;
    let trailers: Record<string, string | string[] | undefined> = {};
    const fail = (error: Error) => {
      if (finished) return;
      finished = true;
      handler.onResponseError?.(controller, error);
    };
    controller.onAbort = fail;
    stream.on('response', (head) => {
      const status = Number(head[HTTP2_HEADER_STATUS]);
      answered = true;
      if (finished) return;
      handler.onResponseStart?.(controller, status, responseHeaders(head), '');
    });
    stream.on('data', (chunk: Buffer) => {
      if (!finished) handler.onResponseData?.(controller, chunk);
    });
    stream.on('trailers', (received) => {
      trailers = responseHeaders(received);
    });
    stream.on('end', () => {
      if (finished) return;
      finished = true;
      handler.onResponseEnd?.(controller, trailers);
    });
    stream.on('error', () => {}); // 'close' reports it, with the stream's reset code
    stream.once('close', () => {
      entry.streams--;
      this.#idleIfUnused(entry);
      if (!finished && refused(stream, answered)) {
        // Never processed (RFC 9113 §8.7): sent again on another connection, if its body can be.
        entry.draining = true;
        const whole = isWholeBody(body);
        const copy = whole ? undefined : keptCopyOf(body);
        const canResend = whole || copy !== undefined;
        if (++exchange.refusals < MAX_REFUSALS && canResend && !controller.aborted && !this.#destroyed) {
          if (copy !== undefined) exchange.body = copy;
          finished = true;
          this.#resent++;
          this.#send(exchange);
          return;
        }
      }
      this.#drainQueue();
      if (!finished) fail(streamError(stream, answered));
    });
    if (first) handler.onRequestStart?.(controller, {});
    if (controller.aborted || body === null || body === undefined) return;
    writeBody(body, stream, fail);
  }
}

/** `session.request()` threw because the session is closing or gone, not because of the request. */
function sessionGone(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return code === 'ERR_HTTP2_INVALID_SESSION' || code === 'ERR_HTTP2_GOAWAY_SESSION';
}

/** A waiting request that will not be sent: its handler hears why. */
function failQueued(exchange: Exchange, error: Error): void {
  exchange.handler.onResponseError?.(exchange.controller ?? aborted(), error);
}

/** The backend refused the stream before answering (`REFUSED_STREAM`, or beyond a GOAWAY's last id). */
function refused(stream: http2.ClientHttp2Stream, answered: boolean): boolean {
  return !answered && stream.rstCode === NGHTTP2_REFUSED_STREAM;
}

/**
 * Why a stream closed without an end. A refused stream (GOAWAY beyond its id, or `REFUSED_STREAM`)
 * was never processed: `unsent`, so any method may go elsewhere. Anything else is a reset.
 */
function streamError(stream: http2.ClientHttp2Stream, answered: boolean): Error {
  const code = stream.rstCode;
  if (refused(stream, answered)) {
    return new McgravityError('EUPSTREAM', 'the backend refused the stream (HTTP/2 REFUSED_STREAM, GOAWAY)', {
      phase: 'unsent',
    });
  }
  const error = new Error(
    `HTTP/2 stream closed by the backend${code === undefined ? '' : ` with code ${code}`}`,
  );
  return Object.assign(error, { code: 'ERR_HTTP2_STREAM_ERROR' });
}

/** The request's HTTP/2 headers: pseudo-headers first, connection headers left out. */
function requestHeaders(
  options: Dispatcher.DispatchOptions,
  authority: string,
  scheme: string,
): http2.OutgoingHttpHeaders {
  const out: http2.OutgoingHttpHeaders = {
    [HTTP2_HEADER_METHOD]: options.method,
    [HTTP2_HEADER_PATH]: options.path,
    [HTTP2_HEADER_SCHEME]: scheme,
    [HTTP2_HEADER_AUTHORITY]: authority,
  };
  const add = (name: string, value: unknown) => {
    // Checked here: node:http2 destroys the whole session (every stream on it) for a bad name.
    validateHeaderName(name);
    const key = name.toLowerCase();
    if (value === undefined || value === null) return;
    if (key === 'host') {
      out[HTTP2_HEADER_AUTHORITY] = String(value);
      return;
    }
    if (CONNECTION_HEADERS.has(key) || (key === 'te' && value !== 'trailers')) return;
    const previous = out[key];
    const next = Array.isArray(value) ? value.map(String) : String(value);
    out[key] =
      previous === undefined
        ? next
        : [...(Array.isArray(previous) ? previous : [String(previous)]), ...[next].flat()];
  };
  const headers = options.headers;
  if (Array.isArray(headers)) {
    for (let i = 0; i + 1 < headers.length; i += 2) add(String(headers[i]), headers[i + 1]);
  } else if (headers !== null && headers !== undefined && typeof headers === 'object') {
    if (Symbol.iterator in headers && typeof (headers as Iterable<unknown>)[Symbol.iterator] === 'function') {
      for (const [name, value] of headers as Iterable<[string, unknown]>) add(name, value);
    } else {
      for (const [name, value] of Object.entries(headers)) add(name, value);
    }
  }
  return out;
}

function responseHeaders(headers: http2.IncomingHttpHeaders): Record<string, string | string[] | undefined> {
  const out: Record<string, string | string[] | undefined> = {};
  for (const name in headers) if (name.charCodeAt(0) !== 58) out[name] = headers[name];
  return out;
}

/** Sends the request body on the stream, with backpressure; a body that fails fails the request. */
function writeBody(
  body: NonNullable<Dispatcher.DispatchOptions['body']>,
  stream: http2.ClientHttp2Stream,
  fail: (error: Error) => void,
): void {
  if (typeof body === 'string' || body instanceof Uint8Array) {
    stream.end(body);
    return;
  }
  const source =
    body instanceof Readable
      ? body
      : Readable.from(body as AsyncIterable<Uint8Array> | Iterable<Uint8Array>, { objectMode: false });
  source.on('error', (error) => {
    fail(error);
    stream.close(NGHTTP2_CANCEL);
  });
  source.pipe(stream);
}
