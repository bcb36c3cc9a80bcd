/**
 * `createProxy()`: a reverse proxy as a `node:http` request handler (also Express middleware), with
 * routing, traffic splitting, session affinity, rate limits, retries on other endpoints through the
 * clusters, correct header hygiene, streaming both ways with backpressure, WebSocket upgrades, and
 * JSON errors with the status DESIGN.md assigns.
 *
 * Per request: find the route, apply its rate limit, build the upstream headers (hop-by-hop
 * stripped, X-Forwarded-* set under `trustProxy`, X-Request-ID kept or made), keep a small request
 * body for replay (larger ones stream and are not retried once sent), send through the cluster, and
 * stream the answer back with an idle timeout and no total timeout (SSE and long downloads flow).
 */
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { Transform } from 'node:stream';
import { MaglevBalancer } from '../balancer/MaglevBalancer.js';
import {
  type Cluster,
  type ClusterOptions,
  type ClusterRequestOptions,
  createCluster,
} from '../cluster/Cluster.js';
import type { ClusterStreamHead } from '../cluster/ResponseRelay.js';
import { type Clock, type RandomSource, systemClock, systemRandom } from '../core/clock.js';
import { optionalDuration } from '../core/duration.js';
import type { Endpoint } from '../core/endpoint.js';
import { McgravityError } from '../core/errors.js';
import { checkKnownOptions, describeValue, optionalFunction, optionalNumber } from '../core/validate.js';
import { setRateLimitHeaders } from '../limit/headers.js';
import type { RateLimiter } from '../limit/RateLimiter.js';
import { ownerGoneReason } from '../mcp/ownerGone.js';
import { idempotentToolsFrom, isRepeatable, parseMessages, SESSION_HEADER } from '../mcp/protocol.js';
import { SessionTable } from '../mcp/SessionTable.js';
import { endToEnd, responseHeaders } from './headers.js';
import { IdleSweeper, type Watched } from './IdleSweeper.js';
import { classify, sendError } from './respond.js';
import {
  compileMatch,
  compileSplit,
  isCluster,
  type Matcher,
  type RouteMatch,
  type SplitTarget,
} from './routes.js';
import { compileTrust, forwardedFor, type TrustFunction, type TrustProxy } from './trust.js';

/**
 * MCP session affinity: every request of an MCP session (`Mcp-Session-Id`) reaches the replica that
 * issued the session; requests without one are balanced, and safe MCP methods are retried elsewhere.
 */
export interface McpAffinity {
  /**
   * `'stateless'`: the session id the client sees is prefixed with an opaque token of the owning
   * endpoint (an HMAC under `affinitySecret`, never its address) and the prefix is stripped on the way
   * in, so proxy replicas that share the secret route a session alike with no shared state.
   * `'table'`: this proxy remembers session → endpoint (LRU with idle expiry); ids pass unchanged.
   * @default 'stateless'
   */
  mode?: 'stateless' | 'table';
  /** Sessions remembered per cluster (table mode routes by them; stateless mode only counts). @default 100_000 */
  maxSessions?: number;
  /** A session unused this long is forgotten. @default 3_600_000 (1 h) */
  sessionIdleMs?: number | string;
  /** Tools whose `tools/call` may be retried on another replica: names, or a function. */
  idempotentTools?: readonly string[] | ((tool: string) => boolean);
}

/** Rate limiting in the proxy. */
export interface ProxyRateLimit {
  limiter: RateLimiter;
  /** What identifies a client: its address (after `trustProxy`), a header, or your function. @default 'ip' */
  key?: 'ip' | `header:${string}` | ((req: IncomingMessage) => string);
  /** Keys never limited. */
  bypass?: readonly string[];
}

/** Proxy timeouts. */
export interface ProxyTimeouts {
  /** Time to open a connection to an upstream (clusters the proxy creates). @default 5_000 */
  connectMs?: number | string;
  /** Time from sending a request to the upstream's response headers, per attempt. @default 30_000 */
  firstByteMs?: number | string;
  /** Longest silence on a response body (or a request body) before both sides are cut. @default 60_000 */
  idleMs?: number | string;
  /** Time a client has to send its request headers (slowloris). @default 10_000 */
  clientHeadersMs?: number | string;
}

/** One route. */
export interface ProxyRoute {
  /** Name in errors and stats. */
  name?: string;
  /** Conditions; a route without any matches everything. */
  match?: RouteMatch;
  /** The upstream: a Cluster, or options to create one (closed with the proxy). */
  cluster?: Cluster | ClusterOptions;
  /** Or several, by weight and header (canary). */
  split?: readonly SplitTarget[];
  /** Remove `match.pathPrefix` from the path sent upstream. @default false */
  stripPrefix?: boolean;
  /** This route's rate limit instead of the proxy's; `false` for none. */
  rateLimit?: ProxyRateLimit | false;
  /** This route's first-byte and idle timeouts instead of the proxy's. */
  timeouts?: Pick<ProxyTimeouts, 'firstByteMs' | 'idleMs'>;
}

/** Options of {@link createProxy}. */
export interface ProxyOptions {
  /** One upstream for everything (or use `routes`). */
  cluster?: Cluster | ClusterOptions;
  routes?: readonly ProxyRoute[];
  /**
   * Keep a client on one endpoint: by address, by a header's value, by a cookie the proxy sets, or by
   * MCP session (`'mcp'`, see {@link McpAffinity}).
   */
  sessionAffinity?: 'ip' | { cookie: string } | { header: string } | 'mcp' | { mcp: McpAffinity };
  /** Secret for affinity cookies; share it between proxy replicas. @default random per process */
  affinitySecret?: string;
  rateLimit?: ProxyRateLimit;
  timeouts?: ProxyTimeouts;
  /** Whose X-Forwarded-* headers to believe; see trust.ts. @default false */
  trustProxy?: TrustProxy;
  /** Largest request body; larger ones get 413. @default 10 MiB */
  maxBodyBytes?: number;
  /** Request bodies up to this size are kept so that a retry can resend them. @default 64 KiB */
  maxReplayBytes?: number;
  /** Largest request head a client may send (with `listen()`); larger gets 431. @default 16 KiB */
  maxHeaderBytes?: number;
  /** Header carrying the request id, or `false` for none. @default 'x-request-id' */
  requestId?: string | false;
  /** Send the upstream's own host as Host (nginx's default) instead of the client's. @default false */
  rewriteHost?: boolean;
  /** Add a `Via` header both ways (`true` for `1.1 mcgravity`, or your pseudonym). @default false */
  via?: boolean | string;
  /** Add an RFC 7239 `Forwarded` header upstream. @default false */
  forwarded?: boolean;
  clock?: Clock;
  random?: RandomSource;
}

/** A running proxy. */
export interface Proxy {
  /** Handles one request: a `node:http` listener and Express middleware (`next` is called when no route matches). */
  handler(req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void): void;
  /** Proxies a WebSocket (or other) upgrade request: the server's `upgrade` listener. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Starts a `node:http` server on `port` (0 for any) and `host` (default 127.0.0.1). */
  listen(port: number, host?: string): Promise<Server>;
  /** Stops accepting, lets requests in flight finish for up to `timeoutMs` (default 10 s), closes what it created. */
  close(options?: { timeoutMs?: number | string }): Promise<void>;
  /** Requests in flight. */
  readonly inflight: number;
  /** With MCP affinity: sessions seen and not idle, per cluster name and endpoint id. */
  mcpSessions(): Record<string, Record<string, number>>;
}

/** A rate limit checked at construction, its bypass list as a set. */
interface CompiledRateLimit {
  readonly limiter: RateLimiter;
  readonly key: NonNullable<ProxyRateLimit['key']>;
  readonly bypass: ReadonlySet<string>;
}

interface CompiledRoute {
  readonly name: string;
  readonly matches: Matcher;
  readonly pick: (req: IncomingMessage, draw: number) => Cluster;
  readonly stripPrefix: string | undefined;
  readonly rateLimit: CompiledRateLimit | false | undefined;
  readonly firstByteMs: number;
  readonly sweeper: IdleSweeper;
}

const KNOWN = [
  'cluster',
  'routes',
  'sessionAffinity',
  'affinitySecret',
  'rateLimit',
  'timeouts',
  'trustProxy',
  'maxBodyBytes',
  'maxReplayBytes',
  'maxHeaderBytes',
  'requestId',
  'rewriteHost',
  'via',
  'forwarded',
  'clock',
  'random',
];

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,200}$/;

/** Creates a reverse proxy. */
export function createProxy(options: ProxyOptions): Proxy {
  return new ReverseProxy(options);
}

class ReverseProxy implements Proxy {
  readonly #routes: CompiledRoute[] = [];
  readonly #owned: Cluster[] = [];
  readonly #rateLimit: CompiledRateLimit | undefined;
  readonly #trust: TrustFunction;
  readonly #maxBodyBytes: number;
  readonly #maxReplayBytes: number;
  readonly #maxHeaderBytes: number;
  readonly #firstByteMs: number;
  readonly #clientHeadersMs: number;
  readonly #requestIdHeader: string | undefined;
  readonly #rewriteHost: boolean;
  readonly #via: string | undefined;
  readonly #forwarded: boolean;
  readonly #affinity: 'ip' | { cookie: string } | { header: string } | undefined;
  readonly #mcp: CompiledMcpAffinity | undefined;
  readonly #secret: string;
  readonly #affinityBalancers = new Map<Cluster, { balancer: MaglevBalancer; tokens: Map<string, string> }>();
  readonly #clock: Clock;
  readonly #random: RandomSource;
  readonly #sweeper: IdleSweeper;
  readonly #sweepers: IdleSweeper[] = [];
  readonly #servers = new Set<Server>();
  #inflight = 0;
  #closing = false;

  constructor(options: ProxyOptions) {
    if (options === null || typeof options !== 'object') throw new TypeError('createProxy needs options');
    checkKnownOptions(options, KNOWN, 'createProxy');
    this.#clock = options.clock ?? systemClock;
    this.#random = optionalFunction(options.random, 'random', systemRandom);
    const timeouts = options.timeouts ?? {};
    checkKnownOptions(timeouts, ['connectMs', 'firstByteMs', 'idleMs', 'clientHeadersMs'], 'timeouts');
    const connectMs = optionalDuration(timeouts.connectMs, 'timeouts.connectMs', 5_000);
    this.#firstByteMs = optionalDuration(timeouts.firstByteMs, 'timeouts.firstByteMs', 30_000);
    const idleMs = optionalDuration(timeouts.idleMs, 'timeouts.idleMs', 60_000);
    this.#clientHeadersMs = optionalDuration(timeouts.clientHeadersMs, 'timeouts.clientHeadersMs', 10_000);
    this.#sweeper = new IdleSweeper(idleMs, this.#clock);
    this.#sweepers.push(this.#sweeper);
    this.#trust = compileTrust(options.trustProxy);
    this.#maxBodyBytes = optionalNumber(options.maxBodyBytes, 'maxBodyBytes', 10 * 1024 * 1024, {
      min: 0,
      integer: true,
    });
    this.#maxReplayBytes = optionalNumber(options.maxReplayBytes, 'maxReplayBytes', 64 * 1024, {
      min: 0,
      integer: true,
    });
    this.#maxHeaderBytes = optionalNumber(options.maxHeaderBytes, 'maxHeaderBytes', 16 * 1024, {
      min: 1024,
      integer: true,
    });
    const requestId = options.requestId ?? 'x-request-id';
    if (requestId !== false && (typeof requestId !== 'string' || requestId === '')) {
      throw new TypeError(
        `requestId must be a header name or false, got ${describeValue(options.requestId)}`,
      );
    }
    this.#requestIdHeader = requestId === false ? undefined : requestId.toLowerCase();
    this.#rewriteHost = options.rewriteHost === true;
    this.#via =
      options.via === true
        ? '1.1 mcgravity'
        : typeof options.via === 'string'
          ? `1.1 ${options.via}`
          : undefined;
    this.#forwarded = options.forwarded === true;
    this.#rateLimit =
      options.rateLimit === undefined ? undefined : checkRateLimit(options.rateLimit, 'rateLimit');
    const affinity = options.sessionAffinity;
    if (affinity === 'mcp' || (typeof affinity === 'object' && affinity !== null && 'mcp' in affinity)) {
      this.#mcp = compileMcpAffinity(affinity === 'mcp' ? {} : affinity.mcp, this.#clock);
    } else if (
      affinity !== undefined &&
      affinity !== 'ip' &&
      !(
        typeof affinity === 'object' &&
        (typeof (affinity as { cookie?: unknown }).cookie === 'string' ||
          typeof (affinity as { header?: unknown }).header === 'string')
      )
    ) {
      throw new TypeError(
        `sessionAffinity must be 'ip', 'mcp', { cookie: name }, { header: name } or { mcp: options }, got ${describeValue(affinity)}`,
      );
    } else {
      this.#affinity = affinity;
    }
    this.#secret = options.affinitySecret ?? randomBytes(32).toString('hex');

    const clusterFrom = (value: Cluster | ClusterOptions, option: string): Cluster => {
      if (isCluster(value)) return value;
      if (value === null || typeof value !== 'object')
        throw new TypeError(`${option} must be a Cluster or cluster options`);
      const retry =
        value.retry === false
          ? false
          : {
              // Timeouts are retried too: each attempt asks undici for a first byte within firstByteMs.
              retryOn: ['connect-failure', 'reset', 'timeout', 'gateway-error'] as const,
              ...(value.retry ?? {}),
            };
      const created = createCluster({
        ...value,
        retry: retry === false ? false : { ...retry, retryOn: [...retry.retryOn] },
        pool: { connectTimeoutMs: connectMs, ...(value.pool ?? {}) },
        clock: value.clock ?? this.#clock,
        random: value.random ?? this.#random,
      });
      this.#owned.push(created);
      return created;
    };

    if (options.routes !== undefined && options.cluster !== undefined) {
      throw new TypeError('createProxy takes either cluster or routes, not both');
    }
    if (options.routes !== undefined) {
      if (!Array.isArray(options.routes) || options.routes.length === 0)
        throw new TypeError('routes must be a non-empty array');
      options.routes.forEach((route, i) => {
        this.#routes.push(this.#compileRoute(route, `routes[${i}]`, clusterFrom));
      });
    } else if (options.cluster !== undefined) {
      this.#routes.push(this.#compileRoute({ cluster: options.cluster }, 'cluster', clusterFrom));
    } else {
      throw new TypeError('createProxy needs a cluster or routes');
    }
  }

  get inflight(): number {
    return this.#inflight;
  }

  handler = (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void): void => {
    // Whatever goes wrong (a throwing key function, a bug), the request gets an answer and the
    // process lives on.
    this.#handle(req, res, next).catch(() => {
      if (!res.destroyed && !res.writableEnded)
        sendError(res, 'EINTERNAL', 'proxy failed to handle the request', undefined);
    });
  };

  upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    this.#upgrade(req, socket, head).catch(() => socket.destroy());
  };

  async listen(port: number, host = '127.0.0.1'): Promise<Server> {
    const server = http.createServer({
      maxHeaderSize: this.#maxHeaderBytes,
      headersTimeout: this.#clientHeadersMs,
      requestTimeout: 0, // bodies may stream for long; the idle timeout covers silence
      connectionsCheckingInterval: Math.max(100, Math.min(1000, this.#clientHeadersMs / 4)),
      keepAliveTimeout: 5_000,
    });
    server.on('request', this.handler);
    server.on('upgrade', this.upgrade);
    server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
      if (!socket.writable) return socket.destroy();
      const tooLarge = error.code === 'HPE_HEADER_OVERFLOW';
      const timeout = error.code === 'ERR_HTTP_REQUEST_TIMEOUT';
      const status = tooLarge ? 431 : timeout ? 408 : 400;
      const reason = tooLarge
        ? 'Request Header Fields Too Large'
        : timeout
          ? 'Request Timeout'
          : 'Bad Request';
      const body = JSON.stringify({
        error: {
          code: 'EBADREQUEST',
          message: tooLarge
            ? 'request headers too large'
            : timeout
              ? 'request headers too slow'
              : 'malformed request',
        },
      });
      socket.end(
        `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.#servers.add(server);
    return server;
  }

  async close(options: { timeoutMs?: number | string } = {}): Promise<void> {
    this.#closing = true;
    const timeoutMs = optionalDuration(options.timeoutMs, 'timeoutMs', 10_000);
    const closed = [...this.#servers].map(
      (server) =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
        }),
    );
    let deadline: NodeJS.Timeout | undefined;
    const overdue = new Promise<void>((resolve) => {
      deadline = setTimeout(resolve, timeoutMs);
      deadline.unref();
    });
    await Promise.race([Promise.all(closed), overdue]);
    clearTimeout(deadline);
    for (const server of this.#servers) server.closeAllConnections();
    await Promise.all(closed);
    this.#servers.clear();
    for (const sweeper of this.#sweepers) sweeper.close();
    await Promise.all(this.#owned.map((cluster) => cluster.close({ timeoutMs })));
  }

  #compileRoute(
    route: ProxyRoute,
    option: string,
    clusterFrom: (value: Cluster | ClusterOptions, option: string) => Cluster,
  ): CompiledRoute {
    if (route === null || typeof route !== 'object') throw new TypeError(`${option} must be an object`);
    checkKnownOptions(
      route,
      ['name', 'match', 'cluster', 'split', 'stripPrefix', 'rateLimit', 'timeouts'],
      option,
    );
    if (route.timeouts !== undefined)
      checkKnownOptions(route.timeouts, ['firstByteMs', 'idleMs'], `${option}.timeouts`);
    const idleMs =
      route.timeouts?.idleMs === undefined
        ? undefined
        : optionalDuration(route.timeouts.idleMs, `${option}.timeouts.idleMs`, 0);
    let sweeper = this.#sweeper;
    if (idleMs !== undefined) {
      sweeper = new IdleSweeper(idleMs, this.#clock);
      this.#sweepers.push(sweeper);
    }
    if (route.match !== undefined)
      checkKnownOptions(
        route.match,
        ['pathPrefix', 'host', 'method', 'headers', 'mcpMethod', 'mcpName'],
        `${option}.match`,
      );
    let pick: (req: IncomingMessage, draw: number) => Cluster;
    if (route.split !== undefined) {
      if (route.cluster !== undefined) throw new TypeError(`${option} takes cluster or split, not both`);
      pick = compileSplit(route.split, `${option}.split`);
    } else if (route.cluster !== undefined) {
      const cluster = clusterFrom(route.cluster, `${option}.cluster`);
      pick = () => cluster;
    } else {
      throw new TypeError(`${option} needs a cluster or a split`);
    }
    const prefix = route.match?.pathPrefix?.replace(/\/+$/, '');
    if (route.stripPrefix === true && prefix === undefined)
      throw new TypeError(`${option}.stripPrefix needs match.pathPrefix`);
    return {
      name: route.name ?? option,
      matches: compileMatch(route.match, `${option}.match`),
      pick,
      stripPrefix: route.stripPrefix === true ? prefix : undefined,
      rateLimit:
        route.rateLimit === undefined || route.rateLimit === false
          ? route.rateLimit
          : checkRateLimit(route.rateLimit, `${option}.rateLimit`),
      firstByteMs: optionalDuration(
        route.timeouts?.firstByteMs,
        `${option}.timeouts.firstByteMs`,
        this.#firstByteMs,
      ),
      sweeper,
    };
  }

  async #handle(req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void): Promise<void> {
    const idHeader = this.#requestIdHeader;
    const incomingId = idHeader === undefined ? undefined : req.headers[idHeader];
    const requestId =
      idHeader === undefined
        ? undefined
        : typeof incomingId === 'string' && REQUEST_ID.test(incomingId)
          ? incomingId
          : randomUUID();
    if (requestId !== undefined && idHeader !== undefined) res.setHeader(idHeader, requestId);
    if (this.#closing) {
      res.setHeader('connection', 'close');
      sendError(res, 'ECLOSED', 'proxy is shutting down', requestId);
      return;
    }
    // The path and query only: an absolute-form target never chooses the host we connect to.
    const path = targetPath(req.url ?? '/');
    if (path === undefined) {
      sendError(res, 'EBADREQUEST', 'malformed request target', requestId);
      return;
    }
    const route = this.#routes.find((candidate) => candidate.matches(req, path));
    if (route === undefined) {
      if (next !== undefined) return next();
      sendError(res, 'ENOUPSTREAM', 'no route matches this request', requestId, { status: 404 });
      return;
    }
    const { client, chain, peerTrusted } = forwardedFor(
      req.socket.remoteAddress ?? '',
      req.headers['x-forwarded-for'],
      this.#trust,
    );

    const limit =
      route.rateLimit === undefined
        ? this.#rateLimit
        : route.rateLimit === false
          ? undefined
          : route.rateLimit;
    if (limit !== undefined) {
      const key = rateLimitKey(limit, req, client);
      if (!limit.bypass.has(key)) {
        const decision = await limit.limiter.consume(key);
        setRateLimitHeaders(res, decision);
        if (!decision.allowed) {
          sendError(res, 'ERATELIMITED', 'rate limit exceeded', requestId);
          return;
        }
      }
    }

    const length = req.headers['content-length'];
    const declared = length === undefined ? undefined : Number(length);
    if (declared !== undefined && declared > this.#maxBodyBytes) {
      res.setHeader('connection', 'close');
      sendError(res, 'EBODYTOOLARGE', `request body over ${this.#maxBodyBytes} bytes`, requestId);
      req.resume();
      return;
    }

    const cluster = route.pick(req, this.#random());
    const headers = this.#upstreamHeaders(req, chain, client, peerTrusted, requestId);
    const upstreamPath = route.stripPrefix === undefined ? path : stripPrefix(path, route.stripPrefix);
    const mcp = this.#mcp;
    const session = mcp === undefined ? undefined : this.#mcpSession(mcp, cluster, req, headers);
    if (session === null) {
      sendError(res, 'ESESSIONGONE', 'MCP session not found', requestId);
      req.resume();
      return;
    }
    // No AbortSignal per request (measured: a quarter of the throughput): a client that leaves
    // before the upstream answers is noticed when the answer comes, and its body is not read.
    this.#inflight++;
    try {
      const hasBody =
        (declared !== undefined && declared > 0) || req.headers['transfer-encoding'] !== undefined;
      let body: Buffer | Transform | null = null;
      if (hasBody && declared !== undefined && declared <= this.#maxReplayBytes) {
        body = await this.#readBody(req, declared, route.sweeper);
      } else if (hasBody) {
        body = this.#limitBody(req, res, requestId, route.sweeper);
      }
      const affinity = this.#affinityFor(cluster, req, client);
      const sweeper = route.sweeper;
      let watched: Watched | undefined;
      // One object, filled in place: conditional spreads would allocate a throwaway object each.
      const options: ClusterRequestOptions = {
        method: req.method ?? 'GET',
        path: upstreamPath,
        headers,
        body,
        headersTimeoutMs: route.firstByteMs,
      };
      if (affinity.key !== undefined) options.key = affinity.key;
      if (affinity.prefer !== undefined) options.prefer = affinity.prefer;
      if (session !== undefined) options.pin = session.endpointId;
      if (mcp !== undefined && Buffer.isBuffer(body) && mcpRepeatable(mcp, body)) options.idempotent = true;
      try {
        await cluster.stream(options, (head) => {
          if (mcp !== undefined) this.#mcpLearn(mcp, cluster, req, head, session);
          // A client gone while the upstream was thinking: the destroyed response stops the upstream.
          if (res.destroyed) return res;
          this.#writeHead(res, head, cluster, affinity.cookieToken);
          // The body moves while bytes are relayed; both a silent upstream and a client that stops
          // reading stall it. The sweeper reads the count, so a chunk costs nothing here.
          watched = sweeper.watch(
            () => res.destroy(), // the relay sees the response closed early and aborts the upstream
            () => head.bytesRelayed,
          );
          return res;
        });
      } finally {
        if (watched !== undefined) sweeper.unwatch(watched);
      }
    } catch (error) {
      // Gone, or already answered (413 for a body cut off while streaming): nothing more to say.
      if (res.destroyed || res.writableEnded) return;
      if (session !== undefined && mcp !== undefined) {
        const gone = await ownerGoneReason(cluster, session.endpointId, error);
        if (gone !== undefined) {
          mcp.tableOf(cluster).delete(session.clientId);
          if (!res.destroyed && !res.writableEnded)
            sendError(res, 'ESESSIONGONE', `MCP session's endpoint is gone (${gone})`, requestId);
          return;
        }
      }
      const { code, status, message } = classify(error);
      sendError(res, code, message, requestId, { status });
    } finally {
      this.#inflight--;
    }
  }

  /**
   * The owner of the request's MCP session: undefined when the request has none (balanced), null when
   * its session cannot be routed (unknown token or table entry: the client must initialise again).
   * In stateless mode the token is stripped from the session id sent upstream.
   */
  #mcpSession(
    mcp: CompiledMcpAffinity,
    cluster: Cluster,
    req: IncomingMessage,
    headers: Record<string, string | string[]>,
  ): McpSessionRoute | null | undefined {
    const clientId = req.headers[SESSION_HEADER];
    if (typeof clientId !== 'string' || clientId === '') return undefined;
    const table = mcp.tableOf(cluster);
    if (!mcp.stateless) {
      const entry = table.get(clientId);
      return entry === undefined ? null : { clientId, endpointId: entry.endpointId };
    }
    const dot = clientId.indexOf('.');
    if (dot <= 0) return null;
    const endpointId = this.#affinityState(cluster).tokens.get(clientId.slice(0, dot));
    if (endpointId === undefined) return null;
    headers[SESSION_HEADER] = clientId.slice(dot + 1);
    // Counted for mcpSessions(), and its idle time refreshed; another proxy replica may have opened it.
    if (table.get(clientId) === undefined) table.set(clientId, endpointId, undefined);
    return { clientId, endpointId };
  }

  /** Learns sessions from an answer: a new session id (prefixed in stateless mode), an ended or unknown one. */
  #mcpLearn(
    mcp: CompiledMcpAffinity,
    cluster: Cluster,
    req: IncomingMessage,
    response: ClusterStreamHead,
    session: McpSessionRoute | undefined,
  ): void {
    const table = mcp.tableOf(cluster);
    const issued = response.headers[SESSION_HEADER];
    if (typeof issued === 'string' && issued !== '') {
      const clientId = mcp.stateless ? `${this.#tokenOf(cluster, response.endpoint)}.${issued}` : issued;
      response.headers[SESSION_HEADER] = clientId;
      if (session === undefined) table.set(clientId, response.endpoint.id, undefined);
    }
    if (
      session !== undefined &&
      (response.statusCode === 404 || (req.method === 'DELETE' && response.statusCode < 300))
    ) {
      table.delete(session.clientId);
    }
  }

  mcpSessions(): Record<string, Record<string, number>> {
    const result: Record<string, Record<string, number>> = {};
    if (this.#mcp === undefined) return result;
    for (const [cluster, table] of this.#mcp.tables) result[cluster.name] = table.countFor(cluster.endpoints);
    return result;
  }

  #upstreamHeaders(
    req: IncomingMessage,
    chain: string,
    client: string,
    peerTrusted: boolean,
    requestId: string | undefined,
  ): Record<string, string | string[]> {
    const headers = endToEnd(req.headers);
    delete headers.expect; // 100-continue is answered by our server; undici does not send Expect
    delete headers['content-length']; // set again from the body we send
    const length = req.headers['content-length'];
    if (length !== undefined && req.headers['transfer-encoding'] === undefined)
      headers['content-length'] = length;
    const proto = (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http';
    const host = req.headers.host ?? '';
    headers['x-forwarded-for'] = chain;
    headers['x-forwarded-proto'] =
      peerTrusted && typeof req.headers['x-forwarded-proto'] === 'string'
        ? req.headers['x-forwarded-proto']
        : proto;
    headers['x-forwarded-host'] =
      peerTrusted && typeof req.headers['x-forwarded-host'] === 'string'
        ? req.headers['x-forwarded-host']
        : host;
    if (!peerTrusted) delete headers.forwarded;
    if (this.#forwarded) {
      const node = client.includes(':') ? `"[${client}]"` : client;
      const own = `for=${node};host="${host}";proto=${proto}`;
      headers.forwarded =
        peerTrusted && typeof req.headers.forwarded === 'string' ? `${req.headers.forwarded}, ${own}` : own;
    }
    if (requestId !== undefined && this.#requestIdHeader !== undefined)
      headers[this.#requestIdHeader] = requestId;
    if (this.#via !== undefined) {
      const via = req.headers.via;
      headers.via = via === undefined ? this.#via : `${via}, ${this.#via}`;
    }
    if (this.#rewriteHost) delete headers.host; // undici sends the upstream's authority
    return headers;
  }

  /** The status line and headers of an upstream answer: hop-by-hop headers out, `Via` and the affinity cookie in. */
  #writeHead(
    res: ServerResponse,
    head: ClusterStreamHead,
    cluster: Cluster,
    cookieToken: { name: string; current: string | undefined } | undefined,
  ): void {
    const headers = responseHeaders(head.headers);
    if (this.#via !== undefined) {
      const via = headers.via;
      headers.via = via === undefined ? this.#via : `${String(via)}, ${this.#via}`;
    }
    if (cookieToken !== undefined) {
      const token = this.#tokenOf(cluster, head.endpoint);
      if (token !== cookieToken.current) {
        const existing = headers['set-cookie'];
        const cookie = `${cookieToken.name}=${token}; Path=/; HttpOnly; SameSite=Lax`;
        headers['set-cookie'] =
          existing === undefined
            ? [cookie]
            : [...(Array.isArray(existing) ? existing : [String(existing)]), cookie];
      }
    }
    res.writeHead(head.statusCode, headers);
    // A body of known length is written with its headers in one go; a stream (SSE, chunked) gets its
    // headers at once, so the client sees the response start before the first event.
    if (head.headers['content-length'] === undefined) res.flushHeaders();
  }

  /** Reads a small body whole, so that a retry can resend it. */
  #readBody(req: IncomingMessage, declared: number, sweeper: IdleSweeper): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const watched = sweeper.watch(() => {
        req.destroy();
        reject(new McgravityError('EBADREQUEST', 'request body went idle', { statusCode: 408 }));
      });
      req.on('data', (chunk: Buffer) => {
        watched.lastActivity = this.#clock.now();
        size += chunk.length;
        if (size > declared) return;
        chunks.push(chunk);
      });
      req.once('end', () => {
        sweeper.unwatch(watched);
        resolve(Buffer.concat(chunks, Math.min(size, declared)));
      });
      req.once('error', (error) => {
        sweeper.unwatch(watched);
        reject(error);
      });
    });
  }

  /** Streams a large or chunked body, cutting it off past maxBodyBytes. */
  /** Streams a large or chunked body, cutting it off past maxBodyBytes or when it goes idle. */
  #limitBody(
    req: IncomingMessage,
    res: ServerResponse,
    requestId: string | undefined,
    sweeper: IdleSweeper,
  ): Transform {
    let size = 0;
    const max = this.#maxBodyBytes;
    const clock = this.#clock;
    const limiter = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        watched.lastActivity = clock.now();
        size += chunk.length;
        if (size > max) {
          const error = new McgravityError('EBODYTOOLARGE', `request body over ${max} bytes`);
          res.setHeader('connection', 'close');
          sendError(res, 'EBODYTOOLARGE', error.message, requestId);
          callback(error);
          return;
        }
        callback(null, chunk);
      },
    });
    // A client that stops sending its body mid-way holds an upstream request open: cut it.
    const watched: Watched = sweeper.watch(() => {
      res.setHeader('connection', 'close');
      sendError(res, 'EBADREQUEST', 'request body went idle', requestId, { status: 408 });
      limiter.destroy(new McgravityError('EBADREQUEST', 'request body went idle', { statusCode: 408 }));
      req.unpipe(limiter);
      req.resume(); // the connection closes once the 408 is out
    });
    limiter.once('close', () => sweeper.unwatch(watched));
    req.pipe(limiter);
    req.once('error', (error) => limiter.destroy(error));
    return limiter;
  }

  #affinityFor(
    cluster: Cluster,
    req: IncomingMessage,
    client: string,
  ): { key?: string; prefer?: string; cookieToken?: { name: string; current: string | undefined } } {
    const affinity = this.#affinity;
    if (affinity === undefined) return {};
    if (affinity === 'ip' || 'header' in affinity) {
      const raw = affinity === 'ip' ? client : req.headers[affinity.header.toLowerCase()];
      const key = Array.isArray(raw) ? raw[0] : raw;
      if (key === undefined || key === '') return {};
      const prefer = this.#affinityState(cluster).balancer.pick({ key })?.id;
      return prefer === undefined ? { key } : { key, prefer };
    }
    const current = readCookie(req.headers.cookie, affinity.cookie);
    const state = this.#affinityState(cluster);
    const prefer = current === undefined ? undefined : state.tokens.get(current);
    return { ...(prefer === undefined ? {} : { prefer }), cookieToken: { name: affinity.cookie, current } };
  }

  /** Per cluster: a Maglev table over its eligible endpoints, and cookie tokens, rebuilt as membership changes. */
  #affinityState(cluster: Cluster): { balancer: MaglevBalancer; tokens: Map<string, string> } {
    let state = this.#affinityBalancers.get(cluster);
    if (state === undefined) {
      const created = {
        balancer: new MaglevBalancer({ tableSize: 4099 }),
        tokens: new Map<string, string>(),
      };
      const refresh = () => {
        const eligible = cluster.eligibleEndpoints;
        created.balancer.update(eligible.map((e) => ({ id: e.id, url: e.url, weight: 1, inflight: 0 })));
        created.tokens.clear();
        for (const endpoint of cluster.endpoints)
          created.tokens.set(this.#tokenOf(cluster, endpoint), endpoint.id);
      };
      refresh();
      cluster.on('membership', refresh);
      cluster.on('endpoint:added', refresh);
      state = created;
      this.#affinityBalancers.set(cluster, state);
    }
    return state;
  }

  /** An opaque token for an endpoint: HMAC of its id, so a cookie never shows a backend address. */
  #tokenOf(cluster: Cluster, endpoint: Endpoint): string {
    return createHmac('sha256', this.#secret)
      .update(`${cluster.name}\u0000${endpoint.id}`)
      .digest('base64url')
      .slice(0, 16);
  }

  async #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const fail = (status: number, code: string, message: string): void => {
      if (!socket.writable) {
        socket.destroy();
        return;
      }
      const body = JSON.stringify({ error: { code, message } });
      socket.end(
        `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
    };
    const path = targetPath(req.url ?? '/');
    const route =
      path === undefined ? undefined : this.#routes.find((candidate) => candidate.matches(req, path));
    if (route === undefined || path === undefined)
      return fail(404, 'ENOUPSTREAM', 'no route matches this request');
    const { client, chain, peerTrusted } = forwardedFor(
      req.socket.remoteAddress ?? '',
      req.headers['x-forwarded-for'],
      this.#trust,
    );
    const headers = this.#upstreamHeaders(req, chain, client, peerTrusted, undefined);
    headers.connection = 'Upgrade';
    if (req.headers.upgrade !== undefined) headers.upgrade = req.headers.upgrade;
    const cluster = route.pick(req, this.#random());
    const upstreamPath = route.stripPrefix === undefined ? path : stripPrefix(path, route.stripPrefix);
    socket.on('error', () => socket.destroy());
    try {
      await cluster.execute(
        (endpoint, signal) =>
          new Promise<{ statusCode: number }>((resolve, reject) => {
            const upstream = http.request(new URL(endpoint.url).origin + upstreamPath, {
              method: req.method,
              headers,
              signal,
            });
            upstream.once('upgrade', (response, upstreamSocket, upstreamHead) => {
              const lines = [`HTTP/1.1 101 ${response.statusMessage ?? 'Switching Protocols'}`];
              for (let i = 0; i < response.rawHeaders.length; i += 2) {
                lines.push(`${response.rawHeaders[i]}: ${response.rawHeaders[i + 1]}`);
              }
              socket.write(`${lines.join('\r\n')}\r\n\r\n`);
              if (upstreamHead.length > 0) socket.write(upstreamHead);
              if (head.length > 0) upstreamSocket.write(head);
              const teardown = () => {
                upstreamSocket.destroy();
                socket.destroy();
              };
              upstreamSocket.on('error', teardown);
              upstreamSocket.on('close', teardown);
              socket.on('close', teardown);
              upstreamSocket.pipe(socket);
              socket.pipe(upstreamSocket);
              resolve({ statusCode: 101 });
            });
            upstream.once('response', (response) => {
              // The upstream declined the upgrade: pass its answer on as it is.
              const lines = [`HTTP/1.1 ${response.statusCode} ${response.statusMessage ?? ''}`];
              for (let i = 0; i < response.rawHeaders.length; i += 2) {
                lines.push(`${response.rawHeaders[i]}: ${response.rawHeaders[i + 1]}`);
              }
              socket.write(`${lines.join('\r\n')}\r\n\r\n`);
              response.pipe(socket);
              resolve({ statusCode: response.statusCode ?? 502 });
            });
            upstream.once('error', reject);
            upstream.end();
          }),
        { idempotent: true },
      );
    } catch (error) {
      const { code, status, message } = classify(error);
      fail(status, code, message);
    }
  }
}

/** A request's MCP session: the id the client sent, and the endpoint that owns it. */
interface McpSessionRoute {
  readonly clientId: string;
  readonly endpointId: string;
}

interface CompiledMcpAffinity {
  readonly stateless: boolean;
  readonly tables: Map<Cluster, SessionTable>;
  readonly tableOf: (cluster: Cluster) => SessionTable;
  readonly idempotentTool: (tool: string) => boolean;
}

function compileMcpAffinity(options: McpAffinity, clock: Clock): CompiledMcpAffinity {
  if (options === null || typeof options !== 'object')
    throw new TypeError(`sessionAffinity.mcp must be an object, got ${describeValue(options)}`);
  checkKnownOptions(
    options,
    ['mode', 'maxSessions', 'sessionIdleMs', 'idempotentTools'],
    'sessionAffinity.mcp',
  );
  const mode = options.mode ?? 'stateless';
  if (mode !== 'stateless' && mode !== 'table')
    throw new TypeError(
      `sessionAffinity.mcp.mode must be 'stateless' or 'table', got ${describeValue(mode)}`,
    );
  const maxSessions = optionalNumber(options.maxSessions, 'sessionAffinity.mcp.maxSessions', 100_000, {
    min: 1,
    integer: true,
  });
  const idleMs = optionalDuration(options.sessionIdleMs, 'sessionAffinity.mcp.sessionIdleMs', 3_600_000);
  const idempotentTool = idempotentToolsFrom(options.idempotentTools, 'sessionAffinity.mcp.idempotentTools');
  const tables = new Map<Cluster, SessionTable>();
  return {
    stateless: mode === 'stateless',
    tables,
    tableOf: (cluster) => {
      let table = tables.get(cluster);
      if (table === undefined) {
        table = new SessionTable({ maxSessions, idleMs, clock });
        tables.set(cluster, table);
      }
      return table;
    },
    idempotentTool,
  };
}

/** True when every JSON-RPC message of a kept request body may be sent again on another replica. */
function mcpRepeatable(mcp: CompiledMcpAffinity, body: Buffer): boolean {
  const messages = parseMessages(body.toString('utf8'));
  return messages?.every((message) => isRepeatable(message, mcp.idempotentTool)) === true;
}

function checkRateLimit(value: ProxyRateLimit, option: string): CompiledRateLimit {
  if (value === null || typeof value !== 'object' || typeof value.limiter?.consume !== 'function') {
    throw new TypeError(`${option}.limiter must be a RateLimiter`);
  }
  checkKnownOptions(value, ['limiter', 'key', 'bypass'], option);
  const key = value.key ?? 'ip';
  if (
    !(
      key === 'ip' ||
      typeof key === 'function' ||
      (typeof key === 'string' && key.startsWith('header:') && key.length > 7)
    )
  ) {
    throw new TypeError(
      `${option}.key must be 'ip', 'header:<name>' or a function, got ${describeValue(value.key)}`,
    );
  }
  if (value.bypass !== undefined && !Array.isArray(value.bypass))
    throw new TypeError(`${option}.bypass must be an array of keys`);
  return { limiter: value.limiter, key, bypass: new Set(value.bypass ?? []) };
}

function rateLimitKey(limit: CompiledRateLimit, req: IncomingMessage, client: string): string {
  const key = limit.key;
  if (key === 'ip') return client;
  if (typeof key === 'function') return key(req);
  const raw = req.headers[key.slice(7).toLowerCase()];
  const value = Array.isArray(raw) ? raw[0] : raw;
  return value === undefined || value === '' ? client : value;
}

/**
 * The path and query of a request target: origin-form as it is (a `//x` path stays a path,
 * concatenated to the upstream origin, never resolved), absolute-form reduced to its path.
 */
export function targetPath(url: string): string | undefined {
  if (url.startsWith('/')) return url;
  if (/^https?:\/\//i.test(url)) {
    try {
      const parsed = new URL(url);
      return parsed.pathname + parsed.search;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

function stripPrefix(path: string, prefix: string): string {
  const rest = path.slice(prefix.length);
  return rest === '' || rest.startsWith('?') ? `/${rest}` : rest;
}

function readCookie(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const at = part.indexOf('=');
    if (at !== -1 && part.slice(0, at).trim() === name) return part.slice(at + 1).trim();
  }
  return undefined;
}
