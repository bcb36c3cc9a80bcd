/**
 * Header hygiene for a proxy. Hop-by-hop headers belong to one connection and must not be
 * forwarded (RFC 9110 §7.6.1): `Connection` and every header it names, plus `Keep-Alive`,
 * `Proxy-Connection`, `TE` (except `TE: trailers`), `Trailer`, `Transfer-Encoding` and `Upgrade`
 * (the last two are set by whoever writes the next message); HTTP/2 pseudo-headers too. A client that lists `X-Forwarded-For` in `Connection` to have a
 * proxy drop it gets nothing: forwarding headers are set after stripping.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { util } from 'undici';

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

/**
 * The header names a `Connection` value lists, in lower case; undefined for none. Nearly every peer
 * sends `Connection: keep-alive` (or close), which names no other header: no set to build for it.
 */
function namedIn(connection: string | string[] | undefined): Set<string> | undefined {
  if (connection === undefined || connection === 'keep-alive' || connection === 'close') return undefined;
  if (NAMES_NOTHING.test(String(connection))) return undefined;
  return new Set(
    String(connection)
      .toLowerCase()
      .split(/\s*,\s*/),
  );
}

/** Copies `headers` without hop-by-hop headers, those named in `Connection`, and any in `drop`. */
export function endToEnd(
  headers: IncomingHttpHeaders,
  drop?: ReadonlySet<string>,
): Record<string, string | string[]> {
  const named = namedIn(headers.connection);
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
 * An upstream answer's headers as a flat list for `writeHead` ([name, value, name, value…]), made
 * straight from undici's raw list: order kept, a repeated header stays repeated, values read as
 * latin1 (so their bytes go out exactly as they came). Names are lower-cased, as HTTP/2 requires
 * and as Envoy does on HTTP/1.1, through undici's table of well-known names, whose strings are
 * interned: Node's `writeHead` then matches them against its special headers by identity, which
 * halved its cost against names kept in the upstream's case. Hop-by-hop headers and those the
 * upstream's `Connection` names are left out; HTTP/2 pseudo-headers too.
 */
export function relayedHeaders(raw: readonly Buffer[]): string[] {
  const list: string[] = [];
  let named: Set<string> | undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = util.headerNameToString(raw[i] as Buffer);
    if (HOP_BY_HOP.has(name) || name.charCodeAt(0) === 58) {
      if (name === 'connection') named = namedIn((raw[i + 1] as Buffer).toString('latin1'));
      continue;
    }
    list.push(name, (raw[i + 1] as Buffer).toString('latin1'));
  }
  if (named === undefined) return list;
  // Rare: the upstream's Connection header names end-to-end-looking headers, which go too.
  const kept: string[] = [];
  for (let i = 0; i < list.length; i += 2) {
    if (!named.has(list[i] as string)) kept.push(list[i] as string, list[i + 1] as string);
  }
  return kept;
}
