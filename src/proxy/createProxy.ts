/**
 * `createProxy()`: a reverse proxy as a `node:http` request handler (also Express middleware), with
 * routing, traffic splitting, session affinity, rate limits, retries on other endpoints through the
 * clusters, header hygiene, streaming both ways with backpressure, WebSocket upgrades, and JSON
 * errors with the status each code maps to.
 *
 * One request, top to bottom (each step in its own file):
 * 1. ordering.ts: pipelined requests on one connection wait their turn when one is not safe;
 * 2. admission.ts: closing (503), malformed (400), route (404), rate limit (429);
 * 3. forwarding.ts: request id, upstream headers, the path sent upstream;
 * 4. affinity.ts or mcp/router.ts: which endpoint the request should stay on;
 * 5. body.ts: a small body kept for replay, a large one streamed with a limit;
 * 6. `cluster.stream()`: picked, retried, relayed into the response with an idle timeout and no
 *    total timeout (SSE and long downloads flow);
 * 7. respond.ts: every error answer.
 * Upgrades take the same steps in upgrade.ts; server.ts owns `listen()` and `close()`;
 * requestRecord.ts keeps what the access log and the diagnostics end message report.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Cluster, ClusterRequestOptions } from '../cluster/Cluster.js';
import { attemptsOf } from '../cluster/retrying.js';
import { type Duration, optionalDuration } from '../core/duration.js';
import { type ErrorCode, McgravityError } from '../core/errors.js';
import { setRateLimitHeaders } from '../limit/headers.js';
import { ownerGoneReason } from '../mcp/ownerGone.js';
import { type McpAffinity, McpSessionRouter } from '../mcp/router.js';
import {
  type ProxyRequestEndMessage,
  type ProxyRequestStartMessage,
  proxyRequestEndChannel,
  proxyRequestStartChannel,
} from '../observe/diagnostics.js';
import { admit, consumeLimit, isRefusal, NO_ROUTE, RATE_LIMITED } from './admission.js';
import { Affinity, checkKeyedAffinity } from './affinity.js';
import { consumedBody, type LimitedBody, limitBody, readBody } from './body.js';
import { requestIdOf, upstreamHeaders, upstreamPathOf, writeResponseHead } from './forwarding.js';
import { grpcTimeoutMs, isGrpc, sendTrailersOnly, trailersOnlySink } from './grpc.js';
import { responseHeaders } from './headers.js';
import {
  adoptAuthority,
  closeAfter,
  goneWritable,
  headerListOver,
  http2HasBody,
  isHttp2,
  type ProxyServer,
  resetSignal,
  responseGone,
} from './http2.js';
import type { Watched } from './IdleSweeper.js';
import type {
  Proxy as ProxyContract,
  ProxyOptions,
  ProxySettings,
  UpstreamRequest,
  UpstreamResponse,
} from './options.js';
import { resolveProxyOptions } from './options.js';
import { inOrder } from './ordering.js';
import { logWhenClosed, newRecord, type RequestRecord } from './requestRecord.js';
import { classify, sendError, sendSessionNotFound } from './respond.js';
import { ProxyServers } from './server.js';
import { proxyUpgrade, type UpgradeHost } from './upgrade.js';

export type { McpAffinity } from '../mcp/router.js';
export type { CookieAffinity } from './affinity.js';
export { targetPath } from './forwarding.js';
export type { Http2ListenOptions, ProxyServer, ProxyTlsOptions } from './http2.js';
export type {
  AccessLogEntry,
  Proxy,
  ProxyErrorInfo,
  ProxyOptions,
  ProxyRoute,
  ProxyTimeouts,
  UpstreamRequest,
  UpstreamResponse,
} from './options.js';
export type {
  ProxyRateLimit,
  ProxyRateLimitExemption,
  ProxyRateLimits,
  RateLimitKeySource,
  RateLimitMatch,
} from './rateLimits.js';

/** Creates a reverse proxy. */
export function createProxy(options: ProxyOptions): ProxyContract {
  return new ReverseProxy(options);
}

class ReverseProxy implements ProxyContract, UpgradeHost {
  readonly settings: ProxySettings;
  readonly affinity: Affinity;
  readonly #mcp: McpSessionRouter | undefined;
  readonly #servers = new ProxyServers();
  #inflight = 0;
  /** Resolves close()'s wait once the last request in flight ends. */
  #idle: (() => void) | undefined;
  #closing = false;

  constructor(options: ProxyOptions) {
    this.settings = resolveProxyOptions(options);
    const mode = this.settings.sessionAffinity;
    const mcp =
      mode === 'mcp' ? {} : typeof mode === 'object' && mode !== null && 'mcp' in mode ? mode.mcp : undefined;
    const keyed = mcp === undefined ? checkKeyedAffinity(mode) : undefined;
    const mcpStateless = mcp !== undefined && (mcp as McpAffinity)?.mode !== 'table';
    this.affinity = new Affinity(
      keyed,
      this.settings.affinitySecret,
      mcpStateless || (typeof keyed === 'object' && 'cookie' in keyed),
    );
    this.#mcp = mcp === undefined ? undefined : new McpSessionRouter(mcp, this.settings.clock, this.affinity);
  }

  get inflight(): number {
    return this.#inflight;
  }

  get tunnels(): number {
    return this.#servers.tunnels;
  }

  get clusters(): Readonly<Record<string, Cluster>> {
    return this.settings.clusters;
  }

  get closing(): boolean {
    return this.#closing;
  }

  track(teardown: () => void): () => void {
    return this.#servers.track(teardown);
  }

  handler = (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void): void => {
    if (isHttp2(req)) {
      if (headerListOver(req, this.settings.http2?.maxHeaderListBytes ?? this.settings.maxHeaderBytes)) {
        sendError(res, 'EBADREQUEST', 'request headers too large', undefined, { status: 431 });
        return;
      }
      // Streams are independent: no pipelining order between them.
      adoptAuthority(req);
      this.#guarded(req, res, next, undefined);
    } else {
      inOrder(this.#guarded, req, res, next);
    }
  };

  /** Starts a request's handling, with its record and its end message when someone wants them. */
  readonly #guarded = (
    req: IncomingMessage,
    res: ServerResponse,
    next: ((error?: unknown) => void) | undefined,
    done: (() => void) | undefined,
  ): void => {
    const settings = this.settings;
    const published = proxyRequestEndChannel.hasSubscribers;
    // What the request's end reports; made only when an access log or a subscriber wants it.
    const record = published || settings.accessLog !== undefined ? newRecord() : undefined;
    if (record !== undefined && settings.accessLog !== undefined)
      logWhenClosed(req, res, record, settings.accessLog, settings.clock, settings.logger);
    if (!published) {
      void this.#handle(req, res, next, record, done);
      return;
    }
    const started = settings.clock.now();
    void this.#handle(req, res, next, record, undefined).then(() => {
      const message: ProxyRequestEndMessage = {
        req,
        requestId: record?.requestId,
        statusCode: res.statusCode,
        endpoint: record?.endpoint,
        durationMs: settings.clock.now() - started,
      };
      proxyRequestEndChannel.publish(message);
      done?.();
    });
  };

  /** Marks an answer the proxy makes itself with the request id (a relayed one gets it in its head). */
  #identify(res: ServerResponse, requestId: string | undefined): void {
    const header = this.settings.requestIdHeader;
    if (requestId !== undefined && header !== undefined && !res.headersSent) res.setHeader(header, requestId);
  }

  /** Answers with the proxy's own error, marked with the request id. */
  #refuse(
    res: ServerResponse,
    code: ErrorCode,
    message: string,
    requestId: string | undefined,
    options?: { status: number },
  ): void {
    this.#identify(res, requestId);
    sendError(res, code, message, requestId, options);
  }

  /** Answers 404 to a request whose MCP session cannot be served, marked with the request id. */
  #sessionNotFound(res: ServerResponse, message: string, requestId: string | undefined): void {
    this.#identify(res, requestId);
    sendSessionNotFound(res, message, requestId);
  }

  upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    proxyUpgrade(this, req, socket, head).catch(() => socket.destroy());
  };

  listen(port: number, host = '127.0.0.1'): Promise<ProxyServer> {
    return this.#servers.listen(this.settings, this.handler, this.upgrade, port, host);
  }

  attach(server: ProxyServer): void {
    if (server === null || typeof server !== 'object' || typeof server.on !== 'function')
      throw new TypeError('attach needs a node:http or node:https Server');
    this.#servers.attach(server, this.settings, this.handler, this.upgrade);
  }

  detach(server: ProxyServer): void {
    this.#servers.detach(server);
  }

  async close(options: { timeoutMs?: Duration } = {}): Promise<void> {
    this.#closing = true;
    const timeoutMs = optionalDuration(options.timeoutMs, 'timeoutMs', 10_000);
    const idle =
      this.#inflight === 0
        ? undefined
        : new Promise<void>((resolve) => {
            this.#idle = resolve;
          });
    await this.#servers.close(timeoutMs, idle);
    this.#idle = undefined;
    for (const sweeper of this.settings.sweepers) sweeper.close();
    await Promise.all(this.settings.owned.map((cluster) => cluster.close({ timeoutMs })));
  }

  mcpSessions(): Record<string, Record<string, number>> {
    return this.#mcp?.sessions() ?? {};
  }

  async #handle(
    req: IncomingMessage,
    res: ServerResponse,
    next: ((error?: unknown) => void) | undefined,
    record: RequestRecord | undefined,
    done: (() => void) | undefined,
  ): Promise<void> {
    // Whatever goes wrong (a throwing key function, a bug), the request gets an answer and the
    // process lives on; `done` ends its turn on the connection either way.
    try {
      const settings = this.settings;
      const grpc = isGrpc(req);
      const requestId = requestIdOf(req, settings.requestIdHeader);
      if (record !== undefined) record.requestId = requestId;
      if (proxyRequestStartChannel.hasSubscribers) {
        const message: ProxyRequestStartMessage = { req, requestId };
        proxyRequestStartChannel.publish(message);
      }
      const admitted = admit(req, settings, this.#closing);
      if (isRefusal(admitted)) {
        if (admitted === NO_ROUTE && next !== undefined) return next();
        if (record !== undefined) record.error = admitted.code;
        if (admitted.code === 'ECLOSED' || admitted.code === 'EBADREQUEST') closeAfter(res);
        this.#refuse(res, admitted.code, admitted.message, requestId, { status: admitted.status });
        return;
      }
      const limited = consumeLimit(admitted, settings, req);
      if (limited !== undefined) {
        const decision = await limited;
        setRateLimitHeaders(res, decision);
        if (!decision.allowed) {
          if (record !== undefined) record.error = RATE_LIMITED.code;
          this.#refuse(res, RATE_LIMITED.code, RATE_LIMITED.message, requestId);
          return;
        }
      }
      // A body-parsing middleware may have read the body already: send what it parsed, or say why not.
      const parsed = req.readableEnded ? consumedBody(req) : undefined;
      if (parsed instanceof McgravityError) {
        this.#refuse(res, parsed.code, parsed.message, requestId);
        return;
      }
      const length = parsed === undefined ? req.headers['content-length'] : String(parsed.length);
      const declared = length === undefined ? undefined : Number(length);
      if (declared !== undefined && declared > settings.maxBodyBytes) {
        closeAfter(res);
        this.#refuse(res, 'EBODYTOOLARGE', `request body over ${settings.maxBodyBytes} bytes`, requestId);
        req.resume();
        return;
      }

      const { route } = admitted;
      const cluster = route.pick(req, settings.random());
      if (record !== undefined) {
        record.client = admitted.from.client;
        record.cluster = cluster.name;
      }
      let headers = upstreamHeaders(req, admitted.from, requestId, settings);
      if (parsed !== undefined) {
        delete headers['transfer-encoding'];
        if (parsed.length > 0 || req.headers['content-length'] !== undefined)
          headers['content-length'] = String(parsed.length);
      }
      let upstreamPath = upstreamPathOf(route, admitted.path, req, settings);
      const mcp = this.#mcp;
      const session = mcp?.route(cluster, req, headers);
      if (session === null) {
        this.#sessionNotFound(res, 'no replica of this proxy issued this session', requestId);
        req.resume();
        return;
      }
      let method = req.method ?? 'GET';
      if (settings.onRequest !== undefined) {
        const upstream: UpstreamRequest = { method, path: upstreamPath, headers, cluster };
        settings.onRequest(req, upstream);
        if (typeof upstream.path !== 'string' || !upstream.path.startsWith('/'))
          throw new TypeError(`onRequest left a path that does not start with "/": ${String(upstream.path)}`);
        ({ method, path: upstreamPath, headers } = upstream);
      }
      // No AbortSignal per request (measured: a quarter of the throughput): a client that leaves
      // before the upstream answers is noticed when the answer comes, and its body is not read.
      this.#inflight++;
      try {
        const http2 = isHttp2(req);
        const hasBody =
          (declared !== undefined && declared > 0) ||
          req.headers['transfer-encoding'] !== undefined ||
          (http2 && declared === undefined && http2HasBody(req));
        const sweeper = route.sweeper;
        let body: Buffer | LimitedBody | null = null;
        if (parsed !== undefined) {
          if (parsed.length > 0) body = parsed;
        } else if (hasBody && declared !== undefined && declared <= settings.maxReplayBytes) {
          body = await readBody(req, declared, sweeper, settings.clock);
        } else if (hasBody) {
          // A copy of the body, kept while it streams (up to maxReplayBytes), lets it be sent again: by
          // a retry of a call that allows one, or after a backend refused it unprocessed (any method).
          body = limitBody(
            req,
            (code, message) => {
              closeAfter(res);
              this.#refuse(res, code, message, requestId);
            },
            settings.maxBodyBytes,
            sweeper,
            settings.clock,
            settings.maxReplayBytes,
          );
        }
        if (record !== undefined && body !== null) record.body = Buffer.isBuffer(body) ? body.length : body;
        const affinity = this.affinity.choose(cluster, req, admitted.from.client);
        let watched: Watched | undefined;
        // One object, filled in place: conditional spreads would allocate a throwaway object each.
        const options: ClusterRequestOptions = {
          method,
          path: upstreamPath,
          headers,
          body,
          headersTimeoutMs: route.firstByteMs,
        };
        if (grpc) {
          // gRPC semantics: tried again before any response or on UNAVAILABLE (the policy decides),
          // never once a message was relayed; the call's deadline bounds the wait for its headers.
          options.idempotent = true;
          const deadline = grpcTimeoutMs(req);
          if (deadline !== undefined && (route.firstByteMs <= 0 || deadline < route.firstByteMs))
            options.headersTimeoutMs = deadline;
        }
        if (affinity.key !== undefined) options.key = affinity.key;
        if (affinity.prefer !== undefined) options.prefer = affinity.prefer;
        if (session !== undefined) options.pin = session.endpointId;
        if (mcp !== undefined && Buffer.isBuffer(body) && mcp.repeatable(body)) options.idempotent = true;
        if (http2) options.signal = resetSignal(res); // a reset stream cancels the upstream request at once
        try {
          await cluster.stream(options, (head) => {
            const rewritten = mcp?.learn(cluster, req, head, session) === true;
            if (record !== undefined) {
              record.endpoint = head.endpoint.id;
              record.attempts = head.attempt;
            }
            // A client gone while the upstream was thinking: the destroyed response stops the upstream.
            if (responseGone(res)) return goneWritable(res);
            const cookie =
              affinity.cookie === undefined
                ? undefined
                : this.affinity.cookieFor(cluster, head.endpoint, affinity.cookie);
            if (grpc && head.header('grpc-status') !== undefined) {
              // Trailers-Only (an error before any message): relayed as one frame that ends the stream.
              this.#identify(res, requestId);
              sendTrailersOnly(res, responseHeaders(head.headers) as Record<string, string | string[]>);
              return trailersOnlySink();
            }
            // The raw list as it came, unless the MCP session rewrite or a hook changed the headers.
            let statusCode = head.statusCode;
            let headers: UpstreamResponse['headers'] | readonly Buffer[] = rewritten
              ? head.headers
              : head.rawHeaders;
            if (settings.onResponse !== undefined) {
              const upstream: UpstreamResponse = {
                statusCode,
                headers: head.headers,
                endpoint: head.endpoint,
                attempt: head.attempt,
              };
              this.#identify(res, requestId); // for a hook that reads it from the response
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
              requestId,
            );
            // The body moves while bytes are relayed; both a silent upstream and a client that stops
            // reading stall it. The sweeper reads the count, so a chunk costs nothing here; it cuts
            // by destroying the response, which the relay sees as closed early (the upstream aborts).
            watched = sweeper.watchRelay(res, head);
            return res;
          });
        } finally {
          if (watched !== undefined) sweeper.unwatch(watched);
        }
      } catch (error) {
        // Gone, or already answered (413 for a body cut off while streaming): nothing more to say.
        if (responseGone(res) || res.writableEnded) return;
        if (
          session !== undefined &&
          mcp !== undefined &&
          (await this.#sessionGone(cluster, mcp, session, error, res, requestId))
        )
          return;
        const { code, status, message } = classify(error);
        const attempts = attemptsOf(error) ?? (code === 'ENOUPSTREAM' ? 0 : 1);
        if (record !== undefined) {
          record.error = code;
          record.attempts = attempts;
        }
        settings.logger?.warn(
          { err: error, requestId, cluster: cluster.name, code, status, method, path: upstreamPath },
          `upstream request failed: ${message}`,
        );
        if (settings.onError !== undefined) {
          this.#identify(res, requestId);
          settings.onError(req, res, { code, status, message, requestId, cause: error, attempts });
          if (res.headersSent || res.writableEnded) return;
        }
        this.#refuse(res, code, message, requestId, { status });
      } finally {
        if (--this.#inflight === 0 && this.#idle !== undefined) this.#idle();
      }
    } catch (error) {
      this.settings.logger?.error(
        { err: error, method: req.method, url: req.url },
        'proxy failed to handle a request',
      );
      if (record !== undefined) record.error = 'EINTERNAL';
      if (!responseGone(res) && !res.writableEnded)
        sendError(res, 'EINTERNAL', 'proxy failed to handle the request', undefined);
    } finally {
      done?.();
    }
  }

  /** Answers 404 when the MCP session's owner is gone (the client must initialise again). */
  async #sessionGone(
    cluster: Cluster,
    mcp: McpSessionRouter,
    session: { readonly clientId: string; readonly endpointId: string },
    error: unknown,
    res: ServerResponse,
    requestId: string | undefined,
  ): Promise<boolean> {
    const gone = await ownerGoneReason(cluster, session.endpointId, error);
    if (gone === undefined) return false;
    mcp.forget(cluster, session);
    if (!responseGone(res) && !res.writableEnded)
      this.#sessionNotFound(res, `the session's replica is gone (${gone})`, requestId);
    return true;
  }
}
