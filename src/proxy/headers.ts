/**
 * Header hygiene for a proxy. Hop-by-hop headers belong to one connection and must not be
 * forwarded (RFC 9110 §7.6.1): `Connection` and every header it names, plus `Keep-Alive`,
 * `Proxy-Connection`, `TE` (except `TE: trailers`), `Trailer`, `Transfer-Encoding` and `Upgrade`
 * (the last two are set by whoever writes the next message); HTTP/2 pseudo-headers too. A client that lists `X-Forwarded-For` in `Connection` to have a
 * proxy drop it gets nothing: forwarding headers are set after stripping.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { isHeaderName } from '../core/rawHeaders.js';

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'proxy-authenticate',
  'proxy-authorization',
]);

/** A `Connection` value that is just `keep-alive` or `close`. */
const NAMES_NOTHING = /^\s*(?:keep-alive|close)\s*$/i;

/** Copies `headers` without hop-by-hop headers, those named in `Connection`, and any in `drop`. */
export function endToEnd(
  headers: IncomingHttpHeaders,
  drop?: ReadonlySet<string>,
): Record<string, string | string[]> {
  const connection = headers.connection;
  // Nearly every client sends `Connection: keep-alive` (or close), which names no other header: no
  // set to build for it.
  const named =
    connection === undefined || NAMES_NOTHING.test(connection)
      ? undefined
      : new Set(
          String(connection)
            .toLowerCase()
            .split(/\s*,\s*/),
        );
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    // HTTP/2 pseudo-headers (`:path`, `:authority`…) belong to their message: never forwarded.
    if (HOP_BY_HOP.has(name) || named?.has(name) || drop?.has(name) || name.charCodeAt(0) === 58) continue;
    const value = headers[name];
    if (value !== undefined) out[name] = value;
  }
  // `TE: trailers` says the client takes trailers, which gRPC needs end to end; HTTP/2 allows that
  // value alone (RFC 9113 §8.2.2), and it makes sense to any next hop, so it is kept.
  if (headers.te === 'trailers' && !named?.has('te')) out.te = 'trailers';
  return out;
}

/** Response headers of an upstream answer, minus hop-by-hop ones, ready for `writeHead`. */
export function responseHeaders(headers: Record<string, string | string[] | undefined>): OutgoingHttpHeaders {
  return endToEnd(headers as IncomingHttpHeaders);
}

/**
 * True for a hop-by-hop header name in a raw list (any case): lengths first, so that nearly every
 * end-to-end name is passed over after one comparison.
 */
function isHopByHop(name: Buffer): boolean {
  switch (name.length) {
    case 2:
      return isHeaderName(name, 'te');
    case 7:
      return isHeaderName(name, 'trailer') || isHeaderName(name, 'upgrade');
    case 10:
      return isHeaderName(name, 'connection') || isHeaderName(name, 'keep-alive');
    case 16:
      return isHeaderName(name, 'proxy-connection');
    case 17:
      return isHeaderName(name, 'transfer-encoding');
    case 18:
      return isHeaderName(name, 'proxy-authenticate');
    case 19:
      return isHeaderName(name, 'proxy-authorization');
    default:
      return false;
  }
}

/**
 * An upstream answer's headers as a flat list for `writeHead` ([name, value, name, value…]), made
 * straight from undici's raw list: names keep their case and order, a repeated header stays repeated,
 * and values are read as latin1, so their bytes go out exactly as they came. Hop-by-hop headers and
 * those the upstream's `Connection` names are left out; HTTP/2 pseudo-headers too.
 */
export function relayedHeaders(raw: readonly Buffer[]): string[] {
  const list: string[] = [];
  let named: Set<string> | undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] as Buffer;
    if (isHopByHop(name)) {
      if (name.length === 10 && isHeaderName(name, 'connection')) {
        const value = (raw[i + 1] as Buffer).toString('latin1');
        if (!NAMES_NOTHING.test(value)) named = new Set(value.toLowerCase().split(/\s*,\s*/));
      }
      continue;
    }
    if (name[0] === 58) continue; // ':'
    list.push(name.toString('latin1'), (raw[i + 1] as Buffer).toString('latin1'));
  }
  if (named === undefined) return list;
  // Rare: the upstream's Connection header names end-to-end-looking headers, which go too.
  const kept: string[] = [];
  for (let i = 0; i < list.length; i += 2) {
    if (!named.has((list[i] as string).toLowerCase())) kept.push(list[i] as string, list[i + 1] as string);
  }
  return kept;
}
