/**
 * Routing: which cluster serves a request. Routes are tried in order; the first whose every
 * condition holds wins. A route sends to one cluster, or splits between several by weight (a canary
 * taking 10 %), with header conditions taking precedence (`x-canary: always` to pin a tester to the
 * canary).
 */
import type { IncomingMessage } from 'node:http';
import type { Cluster, ClusterOptions } from '../cluster/Cluster.js';
import { optionalDuration } from '../core/duration.js';
import { headerMatchers, headersMatch, type TextMatch } from '../core/match.js';
import { checkKnownOptions, describeValue } from '../core/validate.js';
import type { IdleSweeper } from './IdleSweeper.js';
import type { ProxyRoute } from './options.js';
import { type CompiledRateLimit, checkRateLimits } from './rateLimits.js';

/** Conditions of a route; all given ones must hold. */
export interface RouteMatch {
  /** The path starts with this segment prefix: `/api` matches `/api`, `/api/x`, not `/apix`. */
  pathPrefix?: string;
  /** The Host (without port), exactly, or a `*.example.com` wildcard. */
  host?: string;
  /** One method or several. */
  method?: string | readonly string[];
  /** Headers that must be present with these values (string: equal; RegExp: match, any flags). */
  headers?: Record<string, TextMatch>;
  /** The MCP method, from the `Mcp-Method` header that MCP clients send from revision 2026-07-28. */
  mcpMethod?: TextMatch;
  /** The tool, prompt or resource, from the `Mcp-Name` header (revision 2026-07-28). */
  mcpName?: TextMatch;
}

/** One side of a traffic split. */
export interface SplitTarget {
  cluster: Cluster;
  /** Share of the traffic that matches no header condition. @default 0 when `headers` is set, else 1 */
  weight?: number;
  /** Requests with these headers always go here. */
  headers?: Record<string, TextMatch>;
}

/** True for a Cluster instance (as opposed to options to create one). */
export function isCluster(value: unknown): value is Cluster {
  return value !== null && typeof value === 'object' && typeof (value as Cluster).request === 'function';
}

/** A compiled route condition. */
export type Matcher = (req: IncomingMessage, path: string) => boolean;

function headerMatcher(
  headers: Record<string, TextMatch>,
  option: string,
): (req: IncomingMessage) => boolean {
  const matchers = headerMatchers(headers, option);
  return (req) => headersMatch(matchers, req.headers);
}

/** Compiles a {@link RouteMatch}. */
export function compileMatch(match: RouteMatch | undefined, option: string): Matcher {
  if (match === undefined) return () => true;
  const checks: Matcher[] = [];
  if (match.pathPrefix !== undefined) {
    const prefix = match.pathPrefix.replace(/\/+$/, '');
    if (!match.pathPrefix.startsWith('/')) throw new TypeError(`${option}.pathPrefix must start with "/"`);
    checks.push(
      (_req, path) =>
        prefix === '' || path === prefix || path.startsWith(`${prefix}/`) || path.startsWith(`${prefix}?`),
    );
  }
  if (match.host !== undefined) {
    const host = match.host.toLowerCase();
    const suffix = host.startsWith('*.') ? host.slice(1) : undefined;
    checks.push((req) => {
      const actual = (req.headers.host ?? '').toLowerCase().replace(/:\d+$/, '');
      return suffix === undefined
        ? actual === host
        : actual.endsWith(suffix) && actual.length > suffix.length;
    });
  }
  if (match.method !== undefined) {
    const methods = new Set(
      (Array.isArray(match.method) ? match.method : [match.method]).map((m) => String(m).toUpperCase()),
    );
    checks.push((req) => methods.has(req.method ?? 'GET'));
  }
  if (match.headers !== undefined) {
    const headers = headerMatcher(match.headers, `${option}.headers`);
    checks.push((req) => headers(req));
  }
  if (match.mcpMethod !== undefined || match.mcpName !== undefined) {
    const mcp: Record<string, TextMatch> = {};
    if (match.mcpMethod !== undefined) mcp['mcp-method'] = match.mcpMethod;
    if (match.mcpName !== undefined) mcp['mcp-name'] = match.mcpName;
    const headers = headerMatcher(mcp, option);
    checks.push((req) => headers(req));
  }
  return (req, path) => {
    for (const check of checks) if (!check(req, path)) return false;
    return true;
  };
}

/** Chooses a cluster among split targets: header conditions first, then by weight. */
export function compileSplit(
  split: readonly SplitTarget[],
  option: string,
): (req: IncomingMessage, draw: number) => Cluster {
  if (!Array.isArray(split) || split.length === 0) throw new TypeError(`${option} must be a non-empty array`);
  const pinned: [(req: IncomingMessage) => boolean, Cluster][] = [];
  const weighted: [number, Cluster][] = [];
  let total = 0;
  split.forEach((target, i) => {
    if (!isCluster(target?.cluster)) {
      throw new TypeError(`${option}[${i}].cluster must be a Cluster`);
    }
    if (target.headers !== undefined)
      pinned.push([headerMatcher(target.headers, `${option}[${i}].headers`), target.cluster]);
    const weight = target.weight ?? (target.headers === undefined ? 1 : 0);
    if (typeof weight !== 'number' || !Number.isFinite(weight) || weight < 0) {
      throw new RangeError(
        `${option}[${i}].weight must be a finite number >= 0, got ${describeValue(target.weight)}`,
      );
    }
    if (weight > 0) {
      total += weight;
      weighted.push([total, target.cluster]);
    }
  });
  if (total === 0) throw new RangeError(`${option} needs at least one target with a weight above 0`);
  return (req, draw) => {
    for (const [matches, cluster] of pinned) if (matches(req)) return cluster;
    const target = draw * total;
    for (const [until, cluster] of weighted) if (target < until) return cluster;
    return (weighted[weighted.length - 1] as [number, Cluster])[1];
  };
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
  readonly rateLimit: readonly CompiledRateLimit[] | false | undefined;
  readonly firstByteMs: number;
  /** Watches request and response bodies for silence. */
  readonly sweeper: IdleSweeper;
  /** Watches tunnels for silence; undefined when off. */
  readonly tunnelSweeper: IdleSweeper | undefined;
}

/** Checks one route of the options and compiles it. */
export function compileRoute(
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
        : checkRateLimits(route.rateLimit, `${option}.rateLimit`),
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
