/**
 * Routing: which cluster serves a request. Routes are tried in order; the first whose every
 * condition holds wins. A route sends to one cluster, or splits between several by weight (a canary
 * taking 10 %), with header conditions taking precedence (`x-canary: always` to pin a tester to the
 * canary).
 */
import type { IncomingMessage } from 'node:http';
import type { Cluster } from '../cluster/Cluster.js';
import { headerMatchers, headersMatch, type TextMatch } from '../core/match.js';
import { describeValue } from '../core/validate.js';

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
