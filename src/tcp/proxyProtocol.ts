/**
 * The PROXY protocol header (HAProxy's specification, versions 1 and 2), which a TCP proxy writes
 * first on each connection to a backend so that the backend sees the client's address instead of
 * the proxy's. Redis (`proxy-protocol` in 7.x forks), nginx (`listen … proxy_protocol`), HAProxy,
 * Envoy, PostgreSQL poolers and most load balancers read it.
 *
 * - v1 is one text line: `PROXY TCP4 <client> <server> <client port> <server port>\r\n`
 *   (`PROXY UNKNOWN\r\n` when the addresses are not known).
 * - v2 is binary: a 12-byte signature, version and command, family, a length, then the addresses
 *   (4 + 4 + 2 + 2 bytes for IPv4, 16 + 16 + 2 + 2 for IPv6). Cheaper to parse, and what AWS NLB
 *   and Envoy send.
 *
 * An IPv4 client reached over a dual-stack socket (`::ffff:10.0.0.1`) is written as IPv4 when the
 * other address is IPv4 too, as the specification requires both to be of one family.
 */
import net from 'node:net';

/** Versions of the PROXY protocol header. */
export type ProxyProtocolVersion = 'v1' | 'v2';

/** The two ends of a client's connection, as the proxy saw them. */
export interface ConnectionAddresses {
  readonly sourceAddress?: string | undefined;
  readonly sourcePort?: number | undefined;
  readonly destinationAddress?: string | undefined;
  readonly destinationPort?: number | undefined;
}

const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
/** Version 2, command PROXY. */
const V2_PROXY = 0x21;
/** Version 2, command LOCAL (the proxy's own connection: addresses are to be ignored). */
const V2_LOCAL = 0x20;
const V2_TCP4 = 0x11;
const V2_TCP6 = 0x21;

/** The header announcing `addresses`, in `version`. */
export function proxyProtocolHeader(version: ProxyProtocolVersion, addresses: ConnectionAddresses): Buffer {
  const pair = addressPair(addresses);
  if (version === 'v1') {
    if (pair === undefined) return Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
    const family = pair.family === 4 ? 'TCP4' : 'TCP6';
    return Buffer.from(
      `PROXY ${family} ${pair.source} ${pair.destination} ${pair.sourcePort} ${pair.destinationPort}\r\n`,
      'latin1',
    );
  }
  if (pair === undefined) {
    const header = Buffer.alloc(16);
    V2_SIGNATURE.copy(header);
    header[12] = V2_LOCAL;
    header[13] = 0x00; // AF_UNSPEC
    header.writeUInt16BE(0, 14);
    return header;
  }
  const size = pair.family === 4 ? 4 : 16;
  const header = Buffer.alloc(16 + size * 2 + 4);
  V2_SIGNATURE.copy(header);
  header[12] = V2_PROXY;
  header[13] = pair.family === 4 ? V2_TCP4 : V2_TCP6;
  header.writeUInt16BE(size * 2 + 4, 14);
  writeAddress(header, 16, pair.source, pair.family);
  writeAddress(header, 16 + size, pair.destination, pair.family);
  header.writeUInt16BE(pair.sourcePort, 16 + size * 2);
  header.writeUInt16BE(pair.destinationPort, 16 + size * 2 + 2);
  return header;
}

interface AddressPair {
  readonly family: 4 | 6;
  readonly source: string;
  readonly destination: string;
  readonly sourcePort: number;
  readonly destinationPort: number;
}

function addressPair(addresses: ConnectionAddresses): AddressPair | undefined {
  const { sourceAddress, destinationAddress, sourcePort, destinationPort } = addresses;
  if (
    sourceAddress === undefined ||
    destinationAddress === undefined ||
    sourcePort === undefined ||
    destinationPort === undefined
  ) {
    return undefined;
  }
  let source = sourceAddress;
  let destination = destinationAddress;
  const mappedSource = unmapped(source);
  const mappedDestination = unmapped(destination);
  if (mappedSource !== undefined && (mappedDestination !== undefined || net.isIPv4(destination))) {
    source = mappedSource;
    destination = mappedDestination ?? destination;
  } else if (mappedDestination !== undefined && net.isIPv4(source)) {
    destination = mappedDestination;
  }
  if (net.isIPv4(source) && net.isIPv4(destination))
    return { family: 4, source, destination, sourcePort, destinationPort };
  if (net.isIPv6(source) && net.isIPv6(destination))
    return { family: 6, source, destination, sourcePort, destinationPort };
  // One of each (an IPv4 client on an IPv6 socket without mapping): both as IPv6.
  const asV6 = (address: string) => (net.isIPv4(address) ? `::ffff:${address}` : address);
  if (net.isIP(source) === 0 || net.isIP(destination) === 0) return undefined;
  return { family: 6, source: asV6(source), destination: asV6(destination), sourcePort, destinationPort };
}

/** `10.0.0.1` for `::ffff:10.0.0.1`, undefined for any other address. */
function unmapped(address: string): string | undefined {
  const match = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return match?.[1];
}

function writeAddress(buffer: Buffer, offset: number, address: string, family: 4 | 6): void {
  if (family === 4) {
    const parts = address.split('.');
    for (let i = 0; i < 4; i++) buffer[offset + i] = Number(parts[i]);
    return;
  }
  // Expand `::` and an embedded IPv4 tail into eight 16-bit groups.
  let text = address;
  const v4Tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4Tail?.[1] !== undefined) {
    const [a, b, c, d] = v4Tail[1].split('.').map(Number) as [number, number, number, number];
    text = `${text.slice(0, -v4Tail[1].length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups =
    tail === undefined
      ? left
      : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  for (let i = 0; i < 8; i++) buffer.writeUInt16BE(Number.parseInt(groups[i] ?? '0', 16), offset + i * 2);
}
