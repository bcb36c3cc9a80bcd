/**
 * What crosses the proxy, and how: the request's target (path and query only), the headers sent
 * upstream (hop-by-hop ones stripped, `X-Forwarded-*` set under `trustProxy`, a request id kept or
 * made, `Via` and `Forwarded` when asked), and the head of the answer written back.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describeValue } from '../core/validate.js';
import { endToEnd, relayedHeaders, responseHeaders } from './headers.js';
import type { ProxyOptions, ProxySettings } from './options.js';
import { newRequestId } from './requestIds.js';
import type { CompiledRoute } from './routes.js';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,200}$/;
const HOST: ReadonlySet<string> = new Set(['host']);

/** Where the request came from, as `forwardedFor()` reads it. */
export interface ClientAddress {
  /** The client's address (after trusted proxies). */
  readonly client: string;
  /** The `X-Forwarded-For` chain to send upstream. */
  readonly chain: string;
  /** The peer is a trusted proxy: its forwarding headers are believed. */
  readonly peerTrusted: boolean;
}

/** The request id to use: the client's when it sent a sane one, otherwise a new one; none when off. */
export function requestIdOf(req: IncomingMessage, header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const incoming = req.headers[header];
  return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : newRequestId();
}

/**
 * Why a request must be refused before anything else, or undefined: two `Host` headers (RFC 9112
 * §3.2: a server must answer 400) are the one case Node's parser lets through, keeping the first.
 */
export function malformation(req: IncomingMessage): string | undefined {
  const raw = req.rawHeaders;
  let hosts = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length === 4 && name.toLowerCase() === 'host' && ++hosts > 1) return 'more than one Host header';
  }
  return undefined;
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

/** `path` without a route's prefix, still starting with `/`. */
export function stripPrefix(path: string, prefix: string): string {
  const rest = path.slice(prefix.length);
  return rest === '' || rest.startsWith('?') ? `/${rest}` : rest;
}

/** The headers sent upstream for `req`. */
export function upstreamHeaders(
  req: IncomingMessage,
  from: ClientAddress,
  requestId: string | undefined,
  settings: ProxySettings,
): Record<string, string | string[]> {
  // No `delete` on the common path: it turns the object into a slow dictionary for undici to read.
  const headers = endToEnd(req.headers, settings.rewriteHost ? HOST : undefined); // undici then sends the upstream's authority
  // 100-continue is answered by our server; undici does not send Expect.
  if (headers.expect !== undefined) delete headers.expect;
  // A length beside Transfer-Encoding is void (RFC 9112 §6.3): the body goes chunked.
  if (headers['content-length'] !== undefined && req.headers['transfer-encoding'] !== undefined)
    delete headers['content-length'];
  const proto = (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http';
  const host = req.headers.host ?? '';
  const { client, chain, peerTrusted } = from;
  headers['x-forwarded-for'] = chain;
  headers['x-forwarded-proto'] =
    peerTrusted && typeof req.headers['x-forwarded-proto'] === 'string'
      ? req.headers['x-forwarded-proto']
      : proto;
  headers['x-forwarded-host'] =
    peerTrusted && typeof req.headers['x-forwarded-host'] === 'string'
      ? req.headers['x-forwarded-host']
      : host;
  if (!peerTrusted && headers.forwarded !== undefined) delete headers.forwarded;
  if (settings.forwarded) {
    const node = client.includes(':') ? `"[${client}]"` : client;
    const own = `for=${node};host="${host}";proto=${proto}`;
    headers.forwarded =
      peerTrusted && typeof req.headers.forwarded === 'string' ? `${req.headers.forwarded}, ${own}` : own;
  }
  if (requestId !== undefined && settings.requestIdHeader !== undefined)
    headers[settings.requestIdHeader] = requestId;
  if (settings.via !== undefined) {
    const via = req.headers.via;
    headers.via = via === undefined ? settings.via : `${via}, ${settings.via}`;
  }
  return headers;
}

/**
 * Writes the head of an upstream answer, plus `Via`, an affinity cookie and the request id (unless
 * the upstream sent its own). `headers` is the raw list as it came (the common path, see
 * `relayedHeaders`), or a header object someone changed (`onResponse`, the MCP session rewrite).
 */
export function writeResponseHead(
  res: ServerResponse,
  statusCode: number,
  headers: readonly Buffer[] | Record<string, string | string[] | undefined>,
  via: string | undefined,
  cookie: string | undefined,
  requestIdHeader: string | undefined,
  requestId: string | undefined,
): void {
  if (!isRawList(headers)) {
    writeHeadFromObject(res, statusCode, headers, via, cookie, requestIdHeader, requestId);
    return;
  }
  const list = relayedHeaders(headers);
  const lengthKnown = listHas(list, 'content-length');
  // Another Via or Set-Cookie line rather than a joined value: the same thing (RFC 9110 §5.3).
  if (via !== undefined) list.push('via', via);
  if (cookie !== undefined) list.push('set-cookie', cookie);
  if (requestId !== undefined && !listHas(list, requestIdHeader as string))
    list.push(requestIdHeader as string, requestId);
  if (res.getHeaderNames().length === 0) {
    res.writeHead(statusCode, list);
  } else {
    // Headers set before (a middleware's, rate-limit ones): the upstream's replace those of the same
    // name and repeated ones stay repeated (Node 20's writeHead would keep the last of each name).
    for (let i = 0; i < list.length; i += 2) res.removeHeader(list[i] as string);
    for (let i = 0; i < list.length; i += 2) res.appendHeader(list[i] as string, list[i + 1] as string);
    res.writeHead(statusCode);
  }
  flushUnlessSized(res, lengthKnown);
}

function isRawList(
  headers: readonly Buffer[] | Record<string, string | string[] | undefined>,
): headers is readonly Buffer[] {
  return Array.isArray(headers);
}

/** The object path of {@link writeResponseHead}: hop-by-hop headers out, the additions in. */
function writeHeadFromObject(
  res: ServerResponse,
  statusCode: number,
  upstreamHeaders: Record<string, string | string[] | undefined>,
  via: string | undefined,
  cookie: string | undefined,
  requestIdHeader: string | undefined,
  requestId: string | undefined,
): void {
  const headers = responseHeaders(upstreamHeaders);
  if (via !== undefined) {
    const previous = headers.via;
    headers.via = previous === undefined ? via : `${String(previous)}, ${via}`;
  }
  if (cookie !== undefined) {
    const existing = headers['set-cookie'];
    headers['set-cookie'] =
      existing === undefined
        ? [cookie]
        : [...(Array.isArray(existing) ? existing : [String(existing)]), cookie];
  }
  if (requestId !== undefined && headers[requestIdHeader as string] === undefined)
    headers[requestIdHeader as string] = requestId;
  res.writeHead(statusCode, headers);
  flushUnlessSized(res, upstreamHeaders['content-length'] !== undefined);
}

/**
 * A body of known length is written with its headers in one go; a stream (SSE, chunked) gets its
 * headers at once, so the client sees the response start before the first event.
 */
function flushUnlessSized(res: ServerResponse, lengthKnown: boolean): void {
  if (!lengthKnown) res.flushHeaders();
}

/** True when a flat header list (lower-case names) holds `name`. */
function listHas(list: readonly string[], name: string): boolean {
  for (let i = 0; i < list.length; i += 2) if (list[i] === name) return true;
  return false;
}

/** The path sent upstream for an admitted request: its route's prefix stripped, then `pathRewrite`. */
export function upstreamPathOf(
  route: CompiledRoute,
  path: string,
  req: IncomingMessage,
  settings: ProxySettings,
): string {
  const stripped = route.stripPrefix === undefined ? path : stripPrefix(path, route.stripPrefix);
  return settings.pathRewrite === undefined ? stripped : settings.pathRewrite(stripped, req);
}

/** Compiles `pathRewrite`: a prefix map becomes a function; the result must still be a path. */
export function compilePathRewrite(
  rewrite: ProxyOptions['pathRewrite'],
): ((path: string, req: IncomingMessage) => string) | undefined {
  if (rewrite === undefined) return undefined;
  let apply: (path: string, req: IncomingMessage) => string;
  if (typeof rewrite === 'function') apply = rewrite;
  else if (rewrite !== null && typeof rewrite === 'object') {
    const entries = Object.entries(rewrite).sort(([a], [b]) => b.length - a.length);
    for (const [from, to] of entries) {
      if (!from.startsWith('/') || typeof to !== 'string' || !to.startsWith('/'))
        throw new TypeError(
          `pathRewrite maps path prefixes to paths, both starting with "/", got ${JSON.stringify(from)} → ${describeValue(to)}`,
        );
    }
    apply = (path) => {
      for (const [from, to] of entries) if (path.startsWith(from)) return to + path.slice(from.length);
      return path;
    };
  } else {
    throw new TypeError(
      `pathRewrite must be an object of prefixes or a function, got ${describeValue(rewrite)}`,
    );
  }
  return (path, req) => {
    const rewritten = apply(path, req);
    if (typeof rewritten !== 'string' || !rewritten.startsWith('/'))
      throw new TypeError(
        `pathRewrite must return a path starting with "/", got ${describeValue(rewritten)}`,
      );
    return rewritten;
  };
}
