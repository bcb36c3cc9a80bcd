/**
 * The proxy's options, checked and resolved once at construction into the settings every request
 * reads: routes with their clusters, rate limits and timeouts, header choices, affinity.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { type Cluster, type ClusterOptions, createCluster } from '../cluster/Cluster.js';
import { type Clock, type RandomSource, systemClock, systemRandom } from '../core/clock.js';
import { type Duration, optionalDuration } from '../core/duration.js';
import type { Endpoint } from '../core/endpoint.js';
import type { ErrorCode } from '../core/errors.js';
import { type Logger, optionalLogger } from '../core/log.js';
import { checkKnownOptions, describeValue, optionalFunction, optionalNumber } from '../core/validate.js';
import type { McpAffinity } from '../mcp/router.js';
import type { CookieAffinity } from './affinity.js';
import { compilePathRewrite } from './forwarding.js';
import {
  type Http2ListenOptions,
  type ProxyServer,
  type ProxyTlsOptions,
  type ResolvedHttp2,
  resolveHttp2,
} from './http2.js';
import { IdleSweeper } from './IdleSweeper.js';
import { type CompiledRateLimit, checkRateLimits, type ProxyRateLimits } from './rateLimits.js';
import { type CompiledRoute, compileRoute, isCluster, type RouteMatch, type SplitTarget } from './routes.js';
import { compileTrust, type TrustFunction, type TrustProxy } from './trust.js';

/** The request about to go upstream, for {@link ProxyOptions.onRequest} to change. */
export interface UpstreamRequest {
  method: string;
  /** Path and query sent upstream (after `stripPrefix` and `pathRewrite`); must start with `/`. */
  path: string;
  /** Headers sent upstream (hop-by-hop ones already stripped, forwarding headers set). */
  headers: Record<string, string | string[]>;
  /** The cluster it goes to. */
  readonly cluster: Cluster;
}

/** The upstream's answer, for {@link ProxyOptions.onResponse} to change before it is written. */
export interface UpstreamResponse {
  statusCode: number;
  /** Headers to write (hop-by-hop ones are stripped after the hook). */
  headers: Record<string, string | string[] | undefined>;
  /** The endpoint that answered. */
  readonly endpoint: Endpoint;
  /** Which try answered: 1 for the first, 2 for the first retry… */
  readonly attempt: number;
}

/** An error the proxy is about to answer, for {@link ProxyOptions.onError}. */
export interface ProxyErrorInfo {
  readonly code: ErrorCode;
  readonly status: number;
  readonly message: string;
  readonly requestId: string | undefined;
  /** What went wrong, as it was raised. */
  readonly cause: unknown;
  /** Tries made upstream (0 when no endpoint could be tried). */
  readonly attempts: number;
}

/**
 * One request, as {@link ProxyOptions.accessLog} receives it once its answer is sent (or the client
 * left). Field names follow common access-log practice; write it as a JSON line as it is.
 */
export interface AccessLogEntry {
  /** When the request arrived, ISO 8601. */
  readonly time: string;
  readonly requestId: string | undefined;
  /** The client's address (after `trustProxy`). */
  readonly client: string;
  readonly method: string;
  /** Path and query as the client sent them. */
  readonly path: string;
  /** Status sent; 0 when the client left before any. */
  readonly status: number;
  /** Cluster the request went to; undefined when the proxy answered before routing (404, 429…). */
  readonly cluster: string | undefined;
  /** Endpoint whose answer was sent; undefined when the proxy answered itself. */
  readonly endpoint: string | undefined;
  /** Tries made upstream (1 without retries; 0 when none was made). */
  readonly attempts: number;
  /** From arrival to the last byte sent, in milliseconds. */
  readonly durationMs: number;
  /** Request body bytes received from the client (the body as parsed, behind a body parser). */
  readonly bytesIn: number;
  /** Bytes written to the client (head and body). */
  readonly bytesOut: number;
  readonly userAgent: string | undefined;
  /** The error code of a failed request (`EUPSTREAMTIMEOUT`…), or `EABORTED` when the client left. */
  readonly error: ErrorCode | undefined;
}

/** Proxy timeouts. */
export interface ProxyTimeouts {
  /** Time to open a connection to an upstream (clusters the proxy creates). @default 5_000 */
  connectMs?: Duration;
  /** Time from sending a request to the upstream's response headers, per attempt; 0: none. @default 30_000 */
  firstByteMs?: Duration;
  /** Longest silence on a response body (or a request body) before both sides are cut; 0: none. @default 60_000 */
  idleMs?: Duration;
  /** Time a client has to send its request headers (slowloris). @default 10_000 */
  clientHeadersMs?: Duration;
  /**
   * Longest silence, both ways, on an upgraded connection (a WebSocket) before it is closed. Off by
   * default: a quiet WebSocket is normal, and its peers keep it alive with pings. @default 0 (off)
   */
  tunnelIdleMs?: Duration;
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
  rateLimit?: ProxyRateLimits | false;
  /** This route's first-byte, idle and tunnel idle timeouts instead of the proxy's. */
  timeouts?: Pick<ProxyTimeouts, 'firstByteMs' | 'idleMs' | 'tunnelIdleMs'>;
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
  sessionAffinity?: 'ip' | CookieAffinity | { header: string } | 'mcp' | { mcp: McpAffinity };
  /**
   * Secret for affinity cookies and stateless MCP session tokens; share it between proxy replicas (16
   * characters at least). Without one, a random secret is made and a warning says that its tokens are
   * valid in this process only. `undefined` counts as not given, so `process.env.AFFINITY_SECRET`
   * can be passed as it is. @default random per process
   */
  affinitySecret?: string | undefined;
  /** Rate limiting for every route that has none of its own: one limit, or classes of clients. */
  rateLimit?: ProxyRateLimits;
  timeouts?: ProxyTimeouts;
  /** Whose X-Forwarded-* headers to believe; see trust.ts. @default false */
  trustProxy?: TrustProxy;
  /** Largest request body; larger ones get 413. @default 10 MiB */
  maxBodyBytes?: number;
  /** Request bodies up to this size are kept so that a retry can resend them. @default 64 KiB */
  maxReplayBytes?: number;
  /** Largest request head a client may send (with `listen()`); larger gets 431. @default 16 KiB */
  maxHeaderBytes?: number;
  /**
   * TLS for `listen()`: a certificate and key (`{ cert, key }`, or any `tls.createSecureContext`
   * option). The listener serves HTTPS, and HTTP/2 by ALPN unless `http2` is false.
   */
  tls?: ProxyTlsOptions;
  /**
   * HTTP/2 for `listen()`: on by default with `tls` (clients choose `h2` or `http/1.1` by ALPN on
   * one port); `{ cleartext: true }` serves HTTP/2 without TLS (h2c, prior knowledge); `false` turns
   * it off. Its options bound streams and header lists. @default true with tls, off without
   */
  http2?: boolean | Http2ListenOptions;
  /** Header carrying the request id, or `false` for none. @default 'x-request-id' */
  requestId?: string | false;
  /** Send the upstream's own host as Host (nginx's default) instead of the client's. @default false */
  rewriteHost?: boolean;
  /** Add a `Via` header both ways (`true` for `1.1 mcgravity`, or your pseudonym). @default false */
  via?: boolean | string;
  /** Add an RFC 7239 `Forwarded` header upstream. @default false */
  forwarded?: boolean;
  /**
   * Rewrites the path sent upstream, after `stripPrefix`: a map of path prefixes to their
   * replacements (`{ '/v1/': '/api/' }`; the longest matching prefix wins), or a function of the path.
   */
  pathRewrite?: Readonly<Record<string, string>> | ((path: string, req: IncomingMessage) => string);
  /** Called before a request goes upstream: change its method, path or headers in place. */
  onRequest?: (req: IncomingMessage, upstream: UpstreamRequest) => void;
  /** Called when the upstream's answer arrives, before it is written: change its status or headers. */
  onResponse?: (req: IncomingMessage, res: ServerResponse, upstream: UpstreamResponse) => void;
  /**
   * Called when the proxy is about to answer an upstream failure (502, 503, 504…): answer `res` yourself
   * to replace the JSON error, or leave it and the JSON error is sent.
   */
  onError?: (req: IncomingMessage, res: ServerResponse, error: ProxyErrorInfo) => void;
  /**
   * Called once per request after its answer was sent or its client left, with an access-log entry.
   * Keep it cheap and non-blocking (hand the entry to an asynchronous logger such as pino). Costs
   * nothing when not set. @default none
   */
  accessLog?: (entry: AccessLogEntry) => void;
  /**
   * A pino-compatible logger: upstream failures and unexpected errors, and, for the clusters the proxy
   * creates from options, everything a cluster logs (endpoint state, panic, breakers). @default silent
   */
  logger?: Logger;
  clock?: Clock;
  random?: RandomSource;
}

/** A running proxy. */
export interface Proxy {
  /** Handles one request: a `node:http` listener and Express middleware (`next` is called when no route matches). */
  handler(req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void): void;
  /** Proxies a WebSocket (or other) upgrade request: the server's `upgrade` listener. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /**
   * Starts a server on `port` (0 for any) and `host` (default 127.0.0.1): `node:http`, or with `tls`
   * `node:http2` (HTTP/2 and HTTP/1.1 on one port) or `node:https` (`http2: false`), or cleartext
   * HTTP/2 with `http2: { cleartext: true }`.
   */
  listen(port: number, host?: string): Promise<ProxyServer>;
  /**
   * Serves on a server you made, such as a `node:https` one: installs the request and upgrade
   * listeners, the client timeouts (`timeouts.clientHeadersMs`; create the server with
   * `connectionsCheckingInterval` of a second or less so that it is checked in time) and the answers
   * to malformed heads. `close()` closes it like its own; {@link detach} hands it back.
   */
  attach(server: ProxyServer): void;
  /**
   * Stops serving on an attached server without closing it, so that another proxy can take it
   * over (a configuration reload). Requests already in flight finish; `close()` waits for them.
   */
  detach(server: ProxyServer): void;
  /**
   * Stops accepting (new requests and upgrades get 503), lets requests in flight finish for up to
   * `timeoutMs` (default 10 s; requests of a detached server or of Express middleware included),
   * then cuts what is left, WebSocket tunnels included, and closes what it created.
   */
  close(options?: { timeoutMs?: Duration }): Promise<void>;
  /** Requests in flight. */
  readonly inflight: number;
  /** WebSocket (upgraded) tunnels open now. */
  readonly tunnels: number;
  /**
   * Every cluster the proxy sends to, by name: those it created from options (named after the
   * route, or `default`) and those passed in. Hand it to `createAdmin({ proxy })`, or listen to
   * their events.
   */
  readonly clusters: Readonly<Record<string, Cluster>>;
  /** With MCP affinity: sessions seen and not idle, per cluster name and endpoint id. */
  mcpSessions(): Record<string, Record<string, number>>;
}

/** Everything a request reads of the options, resolved once. */
export interface ProxySettings {
  readonly routes: readonly CompiledRoute[];
  /** Clusters the proxy created from options (closed with it). */
  readonly owned: readonly Cluster[];
  /** Every cluster the proxy sends to, by name (a name taken twice gets `#2`, `#3`…). */
  readonly clusters: Readonly<Record<string, Cluster>>;
  /** Every idle sweeper, closed with the proxy. */
  readonly sweepers: readonly IdleSweeper[];
  readonly rateLimit: readonly CompiledRateLimit[] | undefined;
  readonly trust: TrustFunction;
  readonly maxBodyBytes: number;
  readonly maxReplayBytes: number;
  readonly maxHeaderBytes: number;
  readonly tls: ProxyTlsOptions | undefined;
  readonly http2: ResolvedHttp2 | undefined;
  readonly connectMs: number;
  readonly clientHeadersMs: number;
  readonly requestIdHeader: string | undefined;
  readonly rewriteHost: boolean;
  readonly via: string | undefined;
  readonly forwarded: boolean;
  readonly sessionAffinity: ProxyOptions['sessionAffinity'];
  /** The path rewrite, compiled; undefined when none. */
  readonly pathRewrite: ((path: string, req: IncomingMessage) => string) | undefined;
  readonly onRequest: ProxyOptions['onRequest'];
  readonly onResponse: ProxyOptions['onResponse'];
  readonly onError: ProxyOptions['onError'];
  readonly accessLog: ProxyOptions['accessLog'];
  readonly logger: Logger | undefined;
  readonly affinitySecret: string | undefined;
  readonly clock: Clock;
  readonly random: RandomSource;
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
  'tls',
  'http2',
  'requestId',
  'rewriteHost',
  'via',
  'forwarded',
  'pathRewrite',
  'onRequest',
  'onResponse',
  'onError',
  'accessLog',
  'logger',
  'clock',
  'random',
];

/** Checks `options` and resolves them; every error names the option. */
export function resolveProxyOptions(options: ProxyOptions): ProxySettings {
  if (options === null || typeof options !== 'object') throw new TypeError('createProxy needs options');
  checkKnownOptions(options, KNOWN, 'createProxy');
  const clock = options.clock ?? systemClock;
  const logger = optionalLogger(options.logger);
  const random = optionalFunction(options.random, 'random', systemRandom);
  const timeouts = options.timeouts ?? {};
  const maxHeaderBytes = optionalNumber(options.maxHeaderBytes, 'maxHeaderBytes', 16 * 1024, {
    min: 1024,
    integer: true,
  });
  if (options.tls !== undefined && (options.tls === null || typeof options.tls !== 'object'))
    throw new TypeError(`tls must be TLS options such as { cert, key }, got ${describeValue(options.tls)}`);
  const tls = options.tls;
  checkKnownOptions(
    timeouts,
    ['connectMs', 'firstByteMs', 'idleMs', 'clientHeadersMs', 'tunnelIdleMs'],
    'timeouts',
  );
  const connectMs = optionalDuration(timeouts.connectMs, 'timeouts.connectMs', 5_000);
  const firstByteMs = optionalDuration(timeouts.firstByteMs, 'timeouts.firstByteMs', 30_000);
  const idleMs = optionalDuration(timeouts.idleMs, 'timeouts.idleMs', 60_000);
  const tunnelIdleMs = optionalDuration(timeouts.tunnelIdleMs, 'timeouts.tunnelIdleMs', 0);
  const clientHeadersMs = optionalDuration(timeouts.clientHeadersMs, 'timeouts.clientHeadersMs', 10_000);
  const requestId = options.requestId ?? 'x-request-id';
  if (requestId !== false && (typeof requestId !== 'string' || requestId === '')) {
    throw new TypeError(`requestId must be a header name or false, got ${describeValue(options.requestId)}`);
  }
  const secret = options.affinitySecret;
  if (secret !== undefined && (typeof secret !== 'string' || secret.length < 16)) {
    throw new TypeError(
      `affinitySecret must be a string of at least 16 characters, got ${describeValue(secret)}`,
    );
  }
  const sweepers: IdleSweeper[] = [];
  const sweeper = (ms: number): IdleSweeper => {
    const made = new IdleSweeper(ms, clock);
    sweepers.push(made);
    return made;
  };
  const defaults = {
    firstByteMs,
    sweeper: sweeper(idleMs),
    tunnelSweeper: tunnelIdleMs > 0 ? sweeper(tunnelIdleMs) : undefined,
  };
  const owned: Cluster[] = [];
  const clusterFrom = (value: Cluster | ClusterOptions, option: string, name: string): Cluster => {
    if (isCluster(value)) return value;
    if (value === null || typeof value !== 'object')
      throw new TypeError(`${option} must be a Cluster or cluster options`);
    const retry =
      value.retry === false
        ? false
        : {
            // Timeouts are retried too: each attempt asks undici for a first byte within firstByteMs.
            retryOn: ['connect-failure', 'reset', 'timeout', 'gateway-error', 'grpc-unavailable'] as const,
            ...(value.retry ?? {}),
          };
    const created = createCluster({
      name,
      ...value,
      retry: retry === false ? false : { ...retry, retryOn: [...retry.retryOn] },
      pool: { connectTimeoutMs: connectMs, ...(value.pool ?? {}) },
      clock: value.clock ?? clock,
      random: value.random ?? random,
      ...(logger === undefined || value.logger !== undefined ? {} : { logger }),
    });
    owned.push(created);
    return created;
  };
  const routes: CompiledRoute[] = [];
  if (options.routes !== undefined && options.cluster !== undefined) {
    throw new TypeError('createProxy takes either cluster or routes, not both');
  }
  if (options.routes !== undefined) {
    if (!Array.isArray(options.routes) || options.routes.length === 0)
      throw new TypeError('routes must be a non-empty array');
    options.routes.forEach((route, i) => {
      routes.push(compileRoute(route, `routes[${i}]`, clusterFrom, defaults, sweeper));
    });
  } else if (options.cluster !== undefined) {
    routes.push(compileRoute({ cluster: options.cluster }, 'cluster', clusterFrom, defaults, sweeper));
  } else {
    throw new TypeError('createProxy needs a cluster or routes');
  }
  const clusters: Record<string, Cluster> = {};
  const named = new Set<Cluster>();
  for (const route of routes) {
    for (const cluster of route.clusters) {
      if (named.has(cluster)) continue;
      named.add(cluster);
      let name = cluster.name;
      for (let n = 2; Object.hasOwn(clusters, name); n++) name = `${cluster.name}#${n}`;
      clusters[name] = cluster;
    }
  }
  return {
    routes,
    owned,
    clusters,
    sweepers,
    rateLimit: options.rateLimit === undefined ? undefined : checkRateLimits(options.rateLimit, 'rateLimit'),
    trust: compileTrust(options.trustProxy),
    maxBodyBytes: optionalNumber(options.maxBodyBytes, 'maxBodyBytes', 10 * 1024 * 1024, {
      min: 0,
      integer: true,
    }),
    maxReplayBytes: optionalNumber(options.maxReplayBytes, 'maxReplayBytes', 64 * 1024, {
      min: 0,
      integer: true,
    }),
    maxHeaderBytes,
    tls,
    http2: resolveHttp2(options.http2, tls, maxHeaderBytes),
    connectMs,
    clientHeadersMs,
    requestIdHeader: requestId === false ? undefined : requestId.toLowerCase(),
    rewriteHost: options.rewriteHost === true,
    via:
      options.via === true
        ? '1.1 mcgravity'
        : typeof options.via === 'string'
          ? `1.1 ${options.via}`
          : undefined,
    forwarded: options.forwarded === true,
    sessionAffinity: options.sessionAffinity,
    affinitySecret: secret,
    pathRewrite: compilePathRewrite(options.pathRewrite),
    onRequest: optionalHook(options.onRequest, 'onRequest'),
    onResponse: optionalHook(options.onResponse, 'onResponse'),
    onError: optionalHook(options.onError, 'onError'),
    accessLog: optionalHook(options.accessLog, 'accessLog'),
    logger,
    clock,
    random,
  };
}

function optionalHook<T>(hook: T | undefined, option: string): T | undefined {
  if (hook !== undefined && typeof hook !== 'function')
    throw new TypeError(`${option} must be a function, got ${describeValue(hook)}`);
  return hook;
}
