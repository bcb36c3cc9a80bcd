/**
 * One proxied request, from admission to its end, as one object: what the request needs on its way
 * lives in its fields, its steps are its methods, and it is itself the cluster call's `settle`
 * (`Cluster.streamInto()`). A request that goes straight through therefore spends no promise, no
 * async frame and no closure context of its own; an async `handle()` spent about a kilobyte of
 * them per request. Two steps may have to wait, and continue from a callback: a rate limit kept in
 * a store, and a small body read whole so that a retry can send it again.
 *
 * Steps: `start()` (request id, admission) → `#limited()` (the rate limit's answer) → `#shape()`
 * (body size, route, upstream headers and path, MCP session, `onRequest`) → `#send()` (affinity,
 * the cluster call) → `open` (the answer's head, written to the client) → `resolve()` or `reject()`.
 *
 * Whichever way it ends, `done` is called exactly once (which ends the request's turn on its
 * connection), after the end message when someone subscribes to it; a request counted in flight
 * (`enter()`) leaves exactly once, before that. Whatever goes wrong (a throwing key function or
 * hook, a bug), the client gets an answer and the process lives on.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Writable } from 'node:stream';
import type { Cluster, ClusterRequestOptions } from '../cluster/Cluster.js';
import type {
  ClusterStreamHead,
  ClusterStreamResult,
  ClusterStreamSettle,
} from '../cluster/ResponseRelay.js';
import { attemptsOf } from '../cluster/retrying.js';
import { type ErrorCode, McgravityError } from '../core/errors.js';
import { setRateLimitHeaders } from '../limit/headers.js';
import type { RateLimitDecision } from '../limit/rules.js';
import { ownerGoneReason } from '../mcp/ownerGone.js';
import type { McpSessionRoute, McpSessionRouter } from '../mcp/router.js';
import {
  type ProxyRequestEndMessage,
  type ProxyRequestStartMessage,
  proxyRequestEndChannel,
  proxyRequestStartChannel,
} from '../observe/diagnostics.js';
import { type Admitted, admit, consumeLimit, isRefusal, NO_ROUTE, RATE_LIMITED } from './admission.js';
import type { Affinity, AffinityChoice } from './affinity.js';
import { type BodyWaiter, consumedBody, type LimitedBody, limitBody, readBody } from './body.js';
import { requestIdOf, upstreamHeaders, upstreamPathOf, writeResponseHead } from './forwarding.js';
import { grpcTimeoutMs, isGrpc, sendTrailersOnly, trailersOnlySink } from './grpc.js';
import { responseHeaders } from './headers.js';
import { closeAfter, goneWritable, http2HasBody, isHttp2, resetSignal, responseGone } from './http2.js';
import type { Watched } from './IdleSweeper.js';
import type { ProxySettings, UpstreamRequest, UpstreamResponse } from './options.js';
import type { RequestRecord } from './requestRecord.js';
import { classify, sendError, sendSessionNotFound } from './respond.js';
import type { CompiledRoute } from './routes.js';

/** What an exchange needs from its proxy. */
export interface ExchangeHost {
  readonly settings: ProxySettings;
  readonly affinity: Affinity;
  readonly mcp: McpSessionRouter | undefined;
  readonly closing: boolean;
  /** A request is about to be sent upstream: counted in flight (for `close()`) until `leave()`. */
  enter(): void;
  leave(): void;
}

type Body = Buffer | LimitedBody | null;

/** See the module comment. */
export class Exchange implements ClusterStreamSettle, BodyWaiter {
  readonly #host: ExchangeHost;
  readonly #req: IncomingMessage;
  readonly #res: ServerResponse;
  readonly #next: ((error?: unknown) => void) | undefined;
  readonly #record: RequestRecord | undefined;
  readonly #done: (() => void) | undefined;
  /** When the request started, for its end message; undefined when nobody subscribes to that. */
  readonly #startedAt: number | undefined;
  #requestId: string | undefined;
  #grpc = false;
  #http2 = false;
  #client = '';
  #route: CompiledRoute | undefined;
  #cluster: Cluster | undefined;
  #method = 'GET';
  #path = '/';
  #headers: Record<string, string | string[]> | undefined;
  #session: McpSessionRoute | undefined;
  #cookie: AffinityChoice['cookie'];
  #watched: Watched | undefined;
  #entered = false;
  #settled = false;
  #finished = false;

  constructor(
    host: ExchangeHost,
    req: IncomingMessage,
    res: ServerResponse,
    next: ((error?: unknown) => void) | undefined,
    record: RequestRecord | undefined,
    done: (() => void) | undefined,
    startedAt: number | undefined,
  ) {
    this.#host = host;
    this.#req = req;
    this.#res = res;
    this.#next = next;
    this.#record = record;
    this.#done = done;
    this.#startedAt = startedAt;
  }

  /** Admits the request and takes it as far as it goes without waiting. */
  start(): void {
    try {
      const settings = this.#host.settings;
      const req = this.#req;
      const record = this.#record;
      this.#grpc = isGrpc(req);
      const requestId = requestIdOf(req, settings.requestIdHeader);
      this.#requestId = requestId;
      if (record !== undefined) record.requestId = requestId;
      if (proxyRequestStartChannel.hasSubscribers) {
        const message: ProxyRequestStartMessage = { req, requestId };
        proxyRequestStartChannel.publish(message);
      }
      const admitted = admit(req, settings, this.#host.closing);
      if (isRefusal(admitted)) {
        if (admitted === NO_ROUTE && this.#next !== undefined) {
          this.#next();
        } else {
          if (record !== undefined) record.error = admitted.code;
          if (admitted.code === 'ECLOSED' || admitted.code === 'EBADREQUEST') closeAfter(this.#res);
          this.#refuse(admitted.code, admitted.message, { status: admitted.status });
        }
        this.#finish();
        return;
      }
      const limited = consumeLimit(admitted, settings, req);
      if (limited === undefined) this.#shape(admitted);
      else
        limited.then(
          (decision) => this.#limited(admitted, decision),
          (error: unknown) => this.#broke(error),
        );
    } catch (error) {
      this.#broke(error);
    }
  }

  /** The rate limit answered (from a store): refused, or on to the next step. */
  #limited(admitted: Admitted, decision: RateLimitDecision): void {
    try {
      setRateLimitHeaders(this.#res, decision);
      if (decision.allowed) {
        this.#shape(admitted);
        return;
      }
      if (this.#record !== undefined) this.#record.error = RATE_LIMITED.code;
      this.#refuse(RATE_LIMITED.code, RATE_LIMITED.message);
      this.#finish();
    } catch (error) {
      this.#broke(error);
    }
  }

  /** Checks the body's size, shapes the upstream request and decides how its body goes. */
  #shape(admitted: Admitted): void {
    const settings = this.#host.settings;
    const req = this.#req;
    const res = this.#res;
    const record = this.#record;
    // A body-parsing middleware may have read the body already: send what it parsed, or say why not.
    const parsed = req.readableEnded ? consumedBody(req) : undefined;
    if (parsed instanceof McgravityError) {
      this.#refuse(parsed.code, parsed.message);
      this.#finish();
      return;
    }
    const length = parsed === undefined ? req.headers['content-length'] : String(parsed.length);
    const declared = length === undefined ? undefined : Number(length);
    if (declared !== undefined && declared > settings.maxBodyBytes) {
      closeAfter(res);
      this.#refuse('EBODYTOOLARGE', `request body over ${settings.maxBodyBytes} bytes`);
      req.resume();
      this.#finish();
      return;
    }

    const { route } = admitted;
    const cluster = route.pick(req, settings.random());
    this.#route = route;
    this.#cluster = cluster;
    this.#client = admitted.from.client;
    if (record !== undefined) {
      record.client = admitted.from.client;
      record.cluster = cluster.name;
    }
    let headers = upstreamHeaders(req, admitted.from, this.#requestId, settings);
    if (parsed !== undefined) {
      delete headers['transfer-encoding'];
      if (parsed.length > 0 || req.headers['content-length'] !== undefined)
        headers['content-length'] = String(parsed.length);
    }
    let path = upstreamPathOf(route, admitted.path, req, settings);
    const session = this.#host.mcp?.route(cluster, req, headers);
    if (session === null) {
      this.#sessionNotFound('no replica of this proxy issued this session');
      req.resume();
      this.#finish();
      return;
    }
    this.#session = session;
    let method = req.method ?? 'GET';
    if (settings.onRequest !== undefined) {
      const upstream: UpstreamRequest = { method, path, headers, cluster };
      settings.onRequest(req, upstream);
      if (typeof upstream.path !== 'string' || !upstream.path.startsWith('/'))
        throw new TypeError(`onRequest left a path that does not start with "/": ${String(upstream.path)}`);
      ({ method, path, headers } = upstream);
    }
    this.#method = method;
    this.#path = path;
    this.#headers = headers;

    // From here the request counts in flight, and every failure is answered as the upstream's.
    this.#host.enter();
    this.#entered = true;
    try {
      const http2 = isHttp2(req);
      this.#http2 = http2;
      const hasBody =
        (declared !== undefined && declared > 0) ||
        req.headers['transfer-encoding'] !== undefined ||
        (http2 && declared === undefined && http2HasBody(req));
      if (parsed !== undefined) {
        this.#send(parsed.length > 0 ? parsed : null);
      } else if (hasBody && declared !== undefined && declared <= settings.maxReplayBytes) {
        readBody(req, declared, route.sweeper, settings.clock, this);
      } else if (hasBody) {
        // A copy of the body, kept while it streams (up to maxReplayBytes), lets it be sent again: by
        // a retry of a call that allows one, or after a backend refused it unprocessed (any method).
        const body = limitBody(
          req,
          (code, message) => {
            closeAfter(res);
            this.#refuse(code, message);
          },
          settings.maxBodyBytes,
          route.sweeper,
          settings.clock,
          settings.maxReplayBytes,
        );
        this.#send(body);
      } else {
        this.#send(null);
      }
    } catch (error) {
      this.reject(error);
    }
  }

  /** Sends the request to its cluster, the answer to be written by `open`. */
  #send(body: Body): void {
    try {
      const route = this.#route as CompiledRoute;
      const cluster = this.#cluster as Cluster;
      const record = this.#record;
      const mcp = this.#host.mcp;
      const session = this.#session;
      if (record !== undefined && body !== null) record.body = Buffer.isBuffer(body) ? body.length : body;
      const affinity = this.#host.affinity.choose(cluster, this.#req, this.#client);
      this.#cookie = affinity.cookie;
      // One object, filled in place: conditional spreads would allocate a throwaway object each.
      const options: ClusterRequestOptions = {
        method: this.#method,
        path: this.#path,
        headers: this.#headers as Record<string, string | string[]>,
        body,
        headersTimeoutMs: route.firstByteMs,
      };
      if (this.#grpc) {
        // gRPC semantics: tried again before any response or on UNAVAILABLE (the policy decides),
        // never once a message was relayed; the call's deadline bounds the wait for its headers.
        options.idempotent = true;
        const deadline = grpcTimeoutMs(this.#req);
        if (deadline !== undefined && (route.firstByteMs <= 0 || deadline < route.firstByteMs))
          options.headersTimeoutMs = deadline;
      }
      if (affinity.key !== undefined) options.key = affinity.key;
      if (affinity.prefer !== undefined) options.prefer = affinity.prefer;
      if (session !== undefined) options.pin = session.endpointId;
      if (mcp !== undefined && Buffer.isBuffer(body) && mcp.repeatable(body)) options.idempotent = true;
      // No AbortSignal per request (measured: a quarter of the throughput): a client that leaves
      // before the upstream answers is noticed when the answer comes, and its body is not read. A
      // reset HTTP/2 stream cancels the upstream request at once.
      if (this.#http2) options.signal = resetSignal(this.#res);
      cluster.streamInto(options, this.open, this);
    } catch (error) {
      this.reject(error);
    }
  }

  /** The cluster's factory: writes the answer's head to the client and returns where its body goes. */
  readonly open = (head: ClusterStreamHead): Writable => {
    const settings = this.#host.settings;
    const req = this.#req;
    const res = this.#res;
    const record = this.#record;
    const cluster = this.#cluster as Cluster;
    const rewritten = this.#host.mcp?.learn(cluster, req, head, this.#session) === true;
    if (record !== undefined) {
      record.endpoint = head.endpoint.id;
      record.attempts = head.attempt;
    }
    // A client gone while the upstream was thinking: the destroyed response stops the upstream.
    if (responseGone(res)) return goneWritable(res);
    const cookie =
      this.#cookie === undefined
        ? undefined
        : this.#host.affinity.cookieFor(cluster, head.endpoint, this.#cookie);
    if (this.#grpc && head.header('grpc-status') !== undefined) {
      // Trailers-Only (an error before any message): relayed as one frame that ends the stream.
      this.#identify();
      sendTrailersOnly(res, responseHeaders(head.headers) as Record<string, string | string[]>);
      return trailersOnlySink();
    }
    // The raw list as it came, unless the MCP session rewrite or a hook changed the headers.
    let statusCode = head.statusCode;
    let headers: UpstreamResponse['headers'] | readonly Buffer[] = rewritten ? head.headers : head.rawHeaders;
    if (settings.onResponse !== undefined) {
      const upstream: UpstreamResponse = {
        statusCode,
        headers: head.headers,
        endpoint: head.endpoint,
        attempt: head.attempt,
      };
      this.#identify(); // for a hook that reads it from the response
      settings.onResponse(req, res, upstream);
      ({ statusCode, headers } = upstream);
    }
    writeResponseHead(
      res,
      statusCode,
      headers,
      settings.via,
      cookie,
      settings.requestIdHeader,
      this.#requestId,
    );
    // The body moves while bytes are relayed; both a silent upstream and a client that stops
    // reading stall it. The sweeper reads the count, so a chunk costs nothing here; it cuts
    // by destroying the response, which the relay sees as closed early (the upstream aborts).
    this.#watched = (this.#route as CompiledRoute).sweeper.watchRelay(res, head);
    return res;
  };

  /** The body, read whole, goes upstream ({@link readBody}'s waiter). */
  bodyRead(body: Buffer): void {
    this.#send(body);
  }

  bodyFailed(error: unknown): void {
    this.reject(error);
  }

  // --- the end

  /** The answer was relayed whole. */
  resolve(_result: ClusterStreamResult): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#unwatch();
    this.#leave();
    this.#finish();
  }

  /** The upstream call failed (or the body could not be read): the error is answered, if anyone listens. */
  reject(error: unknown): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#unwatch();
    // Gone, or already answered (413 for a body cut off while streaming): nothing more to say.
    const res = this.#res;
    if (responseGone(res) || res.writableEnded) {
      this.#leave();
      this.#finish();
      return;
    }
    const session = this.#session;
    const mcp = this.#host.mcp;
    if (session === undefined || mcp === undefined) {
      this.#answerFailure(error);
      return;
    }
    this.#sessionGone(mcp, session, error).then(
      (gone) => {
        if (!gone) {
          this.#answerFailure(error);
          return;
        }
        this.#leave();
        this.#finish();
      },
      (thrown: unknown) => {
        this.#leave();
        this.#broke(thrown);
      },
    );
  }

  /** Answers a failed call with its error's status (or lets `onError` answer). */
  #answerFailure(error: unknown): void {
    try {
      const settings = this.#host.settings;
      const record = this.#record;
      const { code, status, message } = classify(error);
      const attempts = attemptsOf(error) ?? (code === 'ENOUPSTREAM' ? 0 : 1);
      if (record !== undefined) {
        record.error = code;
        record.attempts = attempts;
      }
      settings.logger?.warn(
        {
          err: error,
          requestId: this.#requestId,
          cluster: this.#cluster?.name,
          code,
          status,
          method: this.#method,
          path: this.#path,
        },
        `upstream request failed: ${message}`,
      );
      const res = this.#res;
      let answered = false;
      if (settings.onError !== undefined) {
        this.#identify();
        settings.onError(this.#req, res, {
          code,
          status,
          message,
          requestId: this.#requestId,
          cause: error,
          attempts,
        });
        answered = res.headersSent || res.writableEnded;
      }
      if (!answered) this.#refuse(code, message, { status });
    } catch (thrown) {
      this.#leave();
      this.#broke(thrown);
      return;
    }
    this.#leave();
    this.#finish();
  }

  /** Answers 404 when the MCP session's owner is gone (the client must initialise again). */
  async #sessionGone(mcp: McpSessionRouter, session: McpSessionRoute, error: unknown): Promise<boolean> {
    const gone = await ownerGoneReason(this.#cluster as Cluster, session.endpointId, error);
    if (gone === undefined) return false;
    mcp.forget(this.#cluster as Cluster, session);
    const res = this.#res;
    if (!responseGone(res) && !res.writableEnded)
      this.#sessionNotFound(`the session's replica is gone (${gone})`);
    return true;
  }

  /** Something threw that should not have: a 500, and the request ends. */
  #broke(error: unknown): void {
    const req = this.#req;
    const res = this.#res;
    this.#host.settings.logger?.error(
      { err: error, method: req.method, url: req.url },
      'proxy failed to handle a request',
    );
    if (this.#record !== undefined) this.#record.error = 'EINTERNAL';
    if (!responseGone(res) && !res.writableEnded)
      sendError(res, 'EINTERNAL', 'proxy failed to handle the request', undefined);
    this.#finish();
  }

  #unwatch(): void {
    const watched = this.#watched;
    if (watched === undefined) return;
    this.#watched = undefined;
    (this.#route as CompiledRoute).sweeper.unwatch(watched);
  }

  #leave(): void {
    if (!this.#entered) return;
    this.#entered = false;
    this.#host.leave();
  }

  /** The request is over: its end message, then its turn on the connection ends. Once. */
  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    const startedAt = this.#startedAt;
    if (startedAt !== undefined) {
      const record = this.#record;
      const message: ProxyRequestEndMessage = {
        req: this.#req,
        requestId: record?.requestId,
        statusCode: this.#res.statusCode,
        endpoint: record?.endpoint,
        durationMs: this.#host.settings.clock.now() - startedAt,
      };
      proxyRequestEndChannel.publish(message);
    }
    this.#done?.();
  }

  // --- answers the proxy makes itself

  /** Marks an answer the proxy makes itself with the request id (a relayed one gets it in its head). */
  #identify(): void {
    const header = this.#host.settings.requestIdHeader;
    const requestId = this.#requestId;
    const res = this.#res;
    if (requestId !== undefined && header !== undefined && !res.headersSent) res.setHeader(header, requestId);
  }

  /** Answers with the proxy's own error, marked with the request id. */
  #refuse(code: ErrorCode, message: string, options?: { status: number }): void {
    this.#identify();
    sendError(this.#res, code, message, this.#requestId, options);
  }

  /** Answers 404 to a request whose MCP session cannot be served, marked with the request id. */
  #sessionNotFound(message: string): void {
    this.#identify();
    sendSessionNotFound(this.#res, message, this.#requestId);
  }
}
