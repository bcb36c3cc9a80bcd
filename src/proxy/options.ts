/**
 * The proxy's options, checked and resolved once at construction into the settings every request
 * reads: routes with their clusters, rate limits and timeouts, header choices, affinity.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { type Cluster, type ClusterOptions, createCluster } from '../cluster/Cluster.js';
import { type Clock, type RandomSource, systemClock, systemRandom } from '../core/clock.js';
import { optionalDuration } from '../core/duration.js';
import { checkKnownOptions, describeValue, optionalFunction, optionalNumber } from '../core/validate.js';
import type { RateLimiter } from '../limit/RateLimiter.js';
import type { McpAffinity } from '../mcp/router.js';
import type { CookieAffinity } from './affinity.js';
import { IdleSweeper } from './IdleSweeper.js';
import {
  compileMatch,
  compileSplit,
  isCluster,
  type Matcher,
  type RouteMatch,
  type SplitTarget,
} from './routes.js';
import { compileTrust, type TrustFunction, type TrustProxy } from './trust.js';

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
  /**
   * Longest silence, both ways, on an upgraded connection (a WebSocket) before it is closed. Off by
   * default: a quiet WebSocket is normal, and its peers keep it alive with pings. @default 0 (off)
   */
  tunnelIdleMs?: number | string;
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
   * valid in this process only. @default random per process
   */
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
  /**
   * Stops accepting (new requests and upgrades get 503), lets requests in flight finish for up to
   * `timeoutMs` (default 10 s), then cuts what is left, WebSocket tunnels included, and closes what it
   * created.
   */
  close(options?: { timeoutMs?: number | string }): Promise<void>;
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

/** A rate limit checked at construction, its bypass list as a set. */
export interface CompiledRateLimit {
  readonly limiter: RateLimiter;
  readonly key: NonNullable<ProxyRateLimit['key']>;
  readonly bypass: ReadonlySet<string>;
}

/** A route, ready for requests. */
export interface CompiledRoute {
  readonly name: string;
  /** The clusters it may send to. */
  readonly clusters: readonly Cluster[];
  readonly matches: Matcher;
  readonly pick: (req: IncomingMessage, draw: number) => Cluster;
  readonly stripPrefix: string | undefined;
  /** This route's limit, `false` for none, undefined for the proxy's. */
  readonly rateLimit: CompiledRateLimit | false | undefined;
  readonly firstByteMs: number;
  /** Watches request and response bodies for silence. */
  readonly sweeper: IdleSweeper;
  /** Watches tunnels for silence; undefined when off. */
  readonly tunnelSweeper: IdleSweeper | undefined;
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
  readonly rateLimit: CompiledRateLimit | undefined;
  readonly trust: TrustFunction;
  readonly maxBodyBytes: number;
  readonly maxReplayBytes: number;
  readonly maxHeaderBytes: number;
  readonly connectMs: number;
  readonly clientHeadersMs: number;
  readonly requestIdHeader: string | undefined;
  readonly rewriteHost: boolean;
  readonly via: string | undefined;
  readonly forwarded: boolean;
  readonly sessionAffinity: ProxyOptions['sessionAffinity'];
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
  'requestId',
  'rewriteHost',
  'via',
  'forwarded',
  'clock',
  'random',
];

/** Checks `options` and resolves them; every error names the option. */
export function resolveProxyOptions(options: ProxyOptions): ProxySettings {
  if (options === null || typeof options !== 'object') throw new TypeError('createProxy needs options');
  checkKnownOptions(options, KNOWN, 'createProxy');
  const clock = options.clock ?? systemClock;
  const random = optionalFunction(options.random, 'random', systemRandom);
  const timeouts = options.timeouts ?? {};
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
            retryOn: ['connect-failure', 'reset', 'timeout', 'gateway-error'] as const,
            ...(value.retry ?? {}),
          };
    const created = createCluster({
      name,
      ...value,
      retry: retry === false ? false : { ...retry, retryOn: [...retry.retryOn] },
      pool: { connectTimeoutMs: connectMs, ...(value.pool ?? {}) },
      clock: value.clock ?? clock,
      random: value.random ?? random,
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
    rateLimit: options.rateLimit === undefined ? undefined : checkRateLimit(options.rateLimit, 'rateLimit'),
    trust: compileTrust(options.trustProxy),
    maxBodyBytes: optionalNumber(options.maxBodyBytes, 'maxBodyBytes', 10 * 1024 * 1024, {
      min: 0,
      integer: true,
    }),
    maxReplayBytes: optionalNumber(options.maxReplayBytes, 'maxReplayBytes', 64 * 1024, {
      min: 0,
      integer: true,
    }),
    maxHeaderBytes: optionalNumber(options.maxHeaderBytes, 'maxHeaderBytes', 16 * 1024, {
      min: 1024,
      integer: true,
    }),
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
    clock,
    random,
  };
}

function compileRoute(
  route: ProxyRoute,
  option: string,
  clusterFrom: (value: Cluster | ClusterOptions, option: string, name: string) => Cluster,
  defaults: { firstByteMs: number; sweeper: IdleSweeper; tunnelSweeper: IdleSweeper | undefined },
  sweeper: (ms: number) => IdleSweeper,
): CompiledRoute {
  if (route === null || typeof route !== 'object') throw new TypeError(`${option} must be an object`);
  checkKnownOptions(
    route,
    ['name', 'match', 'cluster', 'split', 'stripPrefix', 'rateLimit', 'timeouts'],
    option,
  );
  if (route.timeouts !== undefined)
    checkKnownOptions(route.timeouts, ['firstByteMs', 'idleMs', 'tunnelIdleMs'], `${option}.timeouts`);
  const idleMs = route.timeouts?.idleMs;
  const tunnelIdleMs = route.timeouts?.tunnelIdleMs;
  const tunnelMs =
    tunnelIdleMs === undefined
      ? undefined
      : optionalDuration(tunnelIdleMs, `${option}.timeouts.tunnelIdleMs`, 0);
  if (route.match !== undefined)
    checkKnownOptions(
      route.match,
      ['pathPrefix', 'host', 'method', 'headers', 'mcpMethod', 'mcpName'],
      `${option}.match`,
    );
  let pick: (req: IncomingMessage, draw: number) => Cluster;
  let clusters: Cluster[];
  if (route.split !== undefined) {
    if (route.cluster !== undefined) throw new TypeError(`${option} takes cluster or split, not both`);
    pick = compileSplit(route.split, `${option}.split`);
    clusters = route.split.map((target) => target.cluster);
  } else if (route.cluster !== undefined) {
    const cluster = clusterFrom(
      route.cluster,
      `${option}.cluster`,
      route.name ?? (option === 'cluster' ? 'default' : option),
    );
    pick = () => cluster;
    clusters = [cluster];
  } else {
    throw new TypeError(`${option} needs a cluster or a split`);
  }
  const prefix = route.match?.pathPrefix?.replace(/\/+$/, '');
  if (route.stripPrefix === true && prefix === undefined)
    throw new TypeError(`${option}.stripPrefix needs match.pathPrefix`);
  return {
    name: route.name ?? option,
    clusters,
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
      defaults.firstByteMs,
    ),
    sweeper:
      idleMs === undefined
        ? defaults.sweeper
        : sweeper(optionalDuration(idleMs, `${option}.timeouts.idleMs`, 0)),
    tunnelSweeper:
      tunnelMs === undefined ? defaults.tunnelSweeper : tunnelMs > 0 ? sweeper(tunnelMs) : undefined,
  };
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

/** The rate limit that applies to a route: its own, none, or the proxy's. */
export function limitOf(route: CompiledRoute, settings: ProxySettings): CompiledRateLimit | undefined {
  return route.rateLimit === undefined
    ? settings.rateLimit
    : route.rateLimit === false
      ? undefined
      : route.rateLimit;
}

/** The key a request is limited by. */
export function rateLimitKey(limit: CompiledRateLimit, req: IncomingMessage, client: string): string {
  const key = limit.key;
  if (key === 'ip') return client;
  if (typeof key === 'function') return key(req);
  const raw = req.headers[key.slice(7).toLowerCase()];
  const value = Array.isArray(raw) ? raw[0] : raw;
  return value === undefined || value === '' ? client : value;
}
