/**
 * A stand-in for your DNS (CoreDNS in Kubernetes, Route 53, Consul's DNS interface) in the discovery
 * example, and the one mcgravity's own tests use: a small authoritative server on 127.0.0.1 (UDP,
 * an ephemeral port) that answers A, AAAA and SRV questions from a table you change while it runs,
 * with the TTL you set, NXDOMAIN for names it does not know, and counts the questions it was asked.
 * Enough of RFC 1035 for a stub resolver (Node's c-ares): one question per message, names without
 * compression in answers (compression is optional for a server), no TCP (answers are small).
 */
import dgram from 'node:dgram';
import net from 'node:net';

/** An SRV record's data (RFC 2782). */
export interface SrvData {
  priority: number;
  weight: number;
  port: number;
  target: string;
}

/** The records of one name; absent types answer NODATA. */
export interface DnsRecords {
  A?: string[];
  AAAA?: string[];
  SRV?: SrvData[];
  /** @default the server's ttl */
  ttl?: number;
}

/** A running test DNS server. */
export interface DnsServer {
  /** `127.0.0.1:port`, for `servers` options and `Resolver.setServers`. */
  readonly address: string;
  /** Records by name (lower case, no trailing dot); change them at any time. */
  readonly zone: Map<string, DnsRecords>;
  /** Questions received so far, as `name/TYPE`. */
  readonly questions: string[];
  /** Stops answering (questions time out at the client) until `resume()`. */
  pause(): void;
  resume(): void;
  close(): Promise<void>;
}

const TYPES: Record<number, keyof Omit<DnsRecords, 'ttl'>> = { 1: 'A', 28: 'AAAA', 33: 'SRV' };

/** Starts a DNS server answering from `zone`, with `ttl` seconds by default. */
export async function startDnsServer(
  zone: Record<string, DnsRecords> = {},
  options: { ttl?: number } = {},
): Promise<DnsServer> {
  const socket = dgram.createSocket('udp4');
  const table = new Map(Object.entries(zone).map(([name, records]) => [name.toLowerCase(), records]));
  const questions: string[] = [];
  let paused = false;
  socket.on('message', (message, peer) => {
    if (paused) return;
    const answer = respond(message, table, options.ttl ?? 1, questions);
    if (answer !== undefined) socket.send(answer, peer.port, peer.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${socket.address().port}`,
    zone: table,
    questions,
    pause: () => {
      paused = true;
    },
    resume: () => {
      paused = false;
    },
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

function respond(
  query: Buffer,
  table: Map<string, DnsRecords>,
  defaultTtl: number,
  questions: string[],
): Buffer | undefined {
  if (query.length < 12 || query.readUInt16BE(4) !== 1) return undefined;
  const { name, end } = readName(query, 12);
  const type = query.readUInt16BE(end);
  const question = query.subarray(12, end + 4);
  const typeName = TYPES[type];
  questions.push(`${name}/${typeName ?? type}`);
  const records = table.get(name.toLowerCase());
  const answers: Buffer[] = [];
  if (records !== undefined && typeName !== undefined) {
    const ttl = records.ttl ?? defaultTtl;
    for (const value of records[typeName] ?? [])
      answers.push(record(name, type, ttl, rdata(typeName, value)));
  }
  const header = Buffer.alloc(12);
  header.writeUInt16BE(query.readUInt16BE(0), 0); // id
  // QR, AA, RD copied; RCODE 3 (NXDOMAIN) for an unknown name.
  header.writeUInt16BE(0x8400 | (query.readUInt16BE(2) & 0x0100) | (records === undefined ? 3 : 0), 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(answers.length, 6);
  return Buffer.concat([header, question, ...answers]);
}

function rdata(type: keyof Omit<DnsRecords, 'ttl'>, value: string | SrvData): Buffer {
  if (type === 'A') return Buffer.from((value as string).split('.').map(Number));
  if (type === 'AAAA') return ipv6Bytes(value as string);
  const srv = value as SrvData;
  const head = Buffer.alloc(6);
  head.writeUInt16BE(srv.priority, 0);
  head.writeUInt16BE(srv.weight, 2);
  head.writeUInt16BE(srv.port, 4);
  return Buffer.concat([head, writeName(srv.target)]);
}

function record(name: string, type: number, ttl: number, data: Buffer): Buffer {
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(type, 0);
  fixed.writeUInt16BE(1, 2); // class IN
  fixed.writeUInt32BE(ttl, 4);
  fixed.writeUInt16BE(data.length, 8);
  return Buffer.concat([writeName(name), fixed, data]);
}

function readName(message: Buffer, start: number): { name: string; end: number } {
  const labels: string[] = [];
  let offset = start;
  for (let length = message[offset] ?? 0; length !== 0; length = message[offset] ?? 0) {
    labels.push(message.toString('latin1', offset + 1, offset + 1 + length));
    offset += 1 + length;
  }
  return { name: labels.join('.'), end: offset + 1 };
}

function writeName(name: string): Buffer {
  const parts = name.replace(/\.$/, '').split('.');
  return Buffer.concat([
    ...parts.map((label) => Buffer.concat([Buffer.from([label.length]), Buffer.from(label, 'latin1')])),
    Buffer.from([0]),
  ]);
}

function ipv6Bytes(address: string): Buffer {
  if (!net.isIPv6(address)) throw new TypeError(`not an IPv6 address: ${address}`);
  const [head = '', tail = ''] = address.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === '' ? [] : tail.split(':');
  const groups = address.includes('::')
    ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right]
    : left;
  const bytes = Buffer.alloc(16);
  groups.forEach((group, i) => {
    bytes.writeUInt16BE(Number.parseInt(group, 16), i * 2);
  });
  return bytes;
}
