/**
 * Which client-sent forwarding headers to believe. A proxy that copies `X-Forwarded-For` from anyone
 * lets any client claim any address (and slip past address-keyed rate limits); one that trusts
 * nobody loses the real client behind a load balancer. `trustProxy` says whom to believe:
 *
 * - `false` (default): nobody; the client is the peer address.
 * - `true`: everybody; the client is the leftmost `X-Forwarded-For` entry.
 * - a number n: the n proxies nearest to us; the client is the entry n hops from the right.
 * - a list of addresses and CIDRs (`'10.0.0.0/8'`, `'::1'`): peers and hops in it are proxies.
 *
 * The same rules as Express's `trust proxy`; address lists are matched by `proxy-addr`, the package
 * Express itself uses (it also accepts IPv4-mapped IPv6 peers against IPv4 ranges).
 */
import net from 'node:net';
import proxyaddr from 'proxy-addr';
import { describeValue } from '../core/validate.js';

/** The `trustProxy` setting. */
export type TrustProxy = boolean | number | readonly string[];

/** Decides whether the hop at a given distance with a given address is a trusted proxy. */
export type TrustFunction = (address: string, hop: number) => boolean;

/** Strips the `::ffff:` of an IPv4-mapped IPv6 address. */
export function plainAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/** Compiles a {@link TrustProxy} setting once, at construction. */
export function compileTrust(setting: TrustProxy | undefined): TrustFunction {
  if (setting === undefined || setting === false) return () => false;
  if (setting === true) return () => true;
  if (typeof setting === 'number') {
    if (!Number.isInteger(setting) || setting < 0) {
      throw new RangeError(`trustProxy as a number must be an integer >= 0, got ${setting}`);
    }
    return (_address, hop) => hop < setting;
  }
  if (!Array.isArray(setting)) {
    throw new TypeError(
      `trustProxy must be a boolean, a hop count or a list of addresses, got ${describeValue(setting)}`,
    );
  }
  // Checked here for errors that name the entry; matched by proxy-addr's compiled list, which
  // measured three times faster per hop than net.BlockList (docs/benchmarks.md, "Header readings").
  for (const entry of setting) {
    if (typeof entry !== 'string')
      throw new TypeError(`trustProxy entries must be strings, got ${describeValue(entry)}`);
    const [address, bits] = entry.split('/') as [string, string | undefined];
    const family = net.isIP(address);
    if (family === 0)
      throw new TypeError(`trustProxy entry ${JSON.stringify(entry)} is not an IP address or CIDR`);
    if (bits !== undefined) {
      const prefix = Number(bits);
      if (!Number.isInteger(prefix) || prefix < 0 || prefix > (family === 4 ? 32 : 128)) {
        throw new TypeError(`trustProxy entry ${JSON.stringify(entry)} has a bad prefix length`);
      }
    }
  }
  return proxyaddr.compile([...setting]);
}

/**
 * The client's address, and the `X-Forwarded-For` chain to send upstream: the trusted part of what
 * came in, plus the peer.
 */
export function forwardedFor(
  peer: string,
  header: string | string[] | undefined,
  trust: TrustFunction,
): { client: string; chain: string; peerTrusted: boolean } {
  const peerAddress = plainAddress(peer);
  const peerTrusted = trust(peerAddress, 0);
  if (!peerTrusted || header === undefined) return { client: peerAddress, chain: peerAddress, peerTrusted };
  const entries = (Array.isArray(header) ? header.join(',') : header)
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  // Walk from the nearest hop outwards while hops are trusted proxies.
  let client = peerAddress;
  let hop = 1;
  for (let i = entries.length - 1; i >= 0; i--) {
    client = plainAddress(entries[i] as string);
    if (!trust(client, hop++)) break;
  }
  return { client, chain: [...entries, peerAddress].join(', '), peerTrusted };
}
