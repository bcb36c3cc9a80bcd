/**
 * Backends from DNS, re-resolved as records expire (Envoy's STRICT_DNS with `respect_dns_ttl`,
 * nginx's `resolve` on an upstream server):
 *
 * - `A` / `AAAA` / `A+AAAA`: every address of `name` becomes a backend on `port`.
 * - `SRV` (RFC 2782): every target and port; each distinct priority becomes a tier (the lowest is the
 *   primary, the others backups taken only when it cannot serve), each record's weight its weight.
 *   Targets are resolved to addresses here (with `targetType`), through the same servers.
 *
 * The next look-up is due when the shortest TTL of the answer runs out, bounded by `minTtlMs` (so a
 * TTL of 0 does not become a query loop) and `maxTtlMs`. Node's resolver (c-ares) reports TTLs of
 * address records but not of SRV records, so an SRV answer is looked up again when its targets'
 * addresses expire. A name that does not exist, or has no records of the type, is an empty answer;
 * a timeout, a refusal or a server failure is an error: the cluster keeps its last good set, and
 * the look-up is retried with a back-off from `minTtlMs` doubling up to `maxTtlMs`.
 *
 * Lookups go to DNS servers directly (as Envoy's c-ares resolver does), not through `/etc/hosts` or
 * the system's `getaddrinfo`: a name only in `/etc/hosts` does not resolve here.
 */
import { Resolver } from 'node:dns/promises';
import net from 'node:net';
import { type Clock, systemClock } from '../core/clock.js';
import { type Duration, optionalDuration } from '../core/duration.js';
import type { BackendConfig } from '../core/endpoint.js';
import { checkKnownOptions, checkNumber, describeValue, optionalNumber } from '../core/validate.js';
import { type Discovery, type DiscoveryResult, Poller, type PollResult } from './Discovery.js';

/** The record types {@link dnsDiscovery} resolves. */
export type DnsRecordType = 'A' | 'AAAA' | 'A+AAAA' | 'SRV';

/** Options of {@link dnsDiscovery}. */
export interface DnsDiscoveryOptions {
  /** The name to resolve: a host name for address records, e.g. `_http._tcp.api.internal` for SRV. */
  name: string;
  /** @default 'A' */
  type?: DnsRecordType;
  /** The backends' port, for address records (SRV records carry their own). @default 80, or 443 for https */
  port?: number;
  /** The backends' URL scheme. @default 'http' */
  scheme?: 'http' | 'https' | 'tcp';
  /** How an SRV record's target is resolved to addresses. @default 'A' */
  targetType?: 'A' | 'AAAA' | 'A+AAAA';
  /** The shortest wait between look-ups, whatever the TTL. @default 5_000 */
  minTtlMs?: Duration;
  /** The longest wait between look-ups, whatever the TTL; also the longest back-off. @default 300_000 */
  maxTtlMs?: Duration;
  /** DNS servers (`'10.0.0.2'`, `'127.0.0.1:5353'`, `'[::1]:53'`). @default the system's */
  servers?: readonly string[];
  /** Time to wait for one answer. @default 2_000 */
  timeoutMs?: Duration;
  /** Tries per server before a look-up fails. @default 2 */
  tries?: number;
  /** Fields every discovered backend gets (zone, metadata, maxConnections; weight for address records). */
  backend?: Omit<BackendConfig, 'url' | 'id'>;
  /** Time source of the waits. @default systemClock */
  clock?: Clock;
}

const OPTIONS = [
  'name',
  'type',
  'port',
  'scheme',
  'targetType',
  'minTtlMs',
  'maxTtlMs',
  'servers',
  'timeoutMs',
  'tries',
  'backend',
  'clock',
];
const TYPES: readonly string[] = ['A', 'AAAA', 'A+AAAA', 'SRV'];
/** Answers that mean "no such records": an empty set, not a failure. */
const EMPTY_ANSWER = new Set(['ENOTFOUND', 'ENODATA']);

interface Settings {
  readonly name: string;
  readonly type: DnsRecordType;
  readonly port: number;
  readonly scheme: string;
  readonly targetType: 'A' | 'AAAA' | 'A+AAAA';
  readonly minTtlMs: number;
  readonly maxTtlMs: number;
  readonly servers: readonly string[] | undefined;
  readonly timeoutMs: number;
  readonly tries: number;
  readonly backend: Omit<BackendConfig, 'url' | 'id'>;
}

/** An address and the seconds it may be cached. */
interface Address {
  readonly address: string;
  readonly ttl: number;
}

/**
 * A {@link Discovery} resolving `name` in DNS; see the module comment.
 * @throws TypeError or RangeError naming the option that is wrong
 * @example createCluster({ name: 'api', discovery: dnsDiscovery({ name: 'api.default.svc.cluster.local', port: 8080 }) })
 */
export function dnsDiscovery(options: DnsDiscoveryOptions): Discovery {
  const settings = resolveOptions(options);
  const clock = options.clock ?? systemClock;
  return {
    description: `dns ${settings.type} ${settings.name}`,
    [Symbol.asyncIterator]() {
      const resolver = new Resolver({ timeout: settings.timeoutMs, tries: settings.tries });
      if (settings.servers !== undefined) resolver.setServers([...settings.servers]);
      let failures = 0;
      const lookUp = async (): Promise<PollResult> => {
        try {
          const { backends, ttlSeconds } = await resolve(resolver, settings);
          failures = 0;
          return { value: backends, nextMs: clamp(ttlSeconds * 1000, settings) };
        } catch (error) {
          const backoff = Math.min(settings.maxTtlMs, settings.minTtlMs * 2 ** failures);
          failures = Math.min(failures + 1, 30);
          return { value: lookupError(settings, error), nextMs: backoff };
        }
      };
      return new Poller(lookUp, clock, () => resolver.cancel());
    },
  };
}

function resolveOptions(options: DnsDiscoveryOptions): Settings {
  if (options === null || typeof options !== 'object') throw new TypeError('dnsDiscovery needs options');
  checkKnownOptions(options, OPTIONS, 'dnsDiscovery');
  if (typeof options.name !== 'string' || options.name === '' || options.name.length > 253) {
    throw new TypeError(`name must be a DNS name, got ${describeValue(options.name)}`);
  }
  const type = options.type ?? 'A';
  if (!TYPES.includes(type))
    throw new TypeError(`type must be one of ${TYPES.join(', ')}, got ${describeValue(type)}`);
  const targetType = options.targetType ?? 'A';
  if (!['A', 'AAAA', 'A+AAAA'].includes(targetType)) {
    throw new TypeError(`targetType must be 'A', 'AAAA' or 'A+AAAA', got ${describeValue(targetType)}`);
  }
  const scheme = options.scheme ?? 'http';
  if (scheme !== 'http' && scheme !== 'https' && scheme !== 'tcp') {
    throw new TypeError(`scheme must be 'http', 'https' or 'tcp', got ${describeValue(scheme)}`);
  }
  if (scheme === 'tcp' && type !== 'SRV' && options.port === undefined) {
    throw new TypeError('port is needed for tcp backends found by address records');
  }
  const port =
    options.port === undefined
      ? scheme === 'https'
        ? 443
        : 80
      : checkNumber(options.port, 'port', { min: 1, max: 65_535, integer: true });
  const minTtlMs = optionalDuration(options.minTtlMs, 'minTtlMs', 5_000);
  const maxTtlMs = optionalDuration(options.maxTtlMs, 'maxTtlMs', 300_000);
  if (minTtlMs < 1) throw new RangeError(`minTtlMs must be at least 1 ms, got ${minTtlMs}`);
  if (maxTtlMs < minTtlMs) {
    throw new RangeError(`maxTtlMs (${maxTtlMs} ms) must not be less than minTtlMs (${minTtlMs} ms)`);
  }
  if (options.servers !== undefined) {
    if (!Array.isArray(options.servers) || options.servers.some((s) => typeof s !== 'string' || s === '')) {
      throw new TypeError(`servers must be a list of addresses, got ${describeValue(options.servers)}`);
    }
    // Checked now, by the resolver that will use them, so that a typo fails at construction.
    new Resolver().setServers([...options.servers]);
  }
  const backend = options.backend ?? {};
  if (backend === null || typeof backend !== 'object') {
    throw new TypeError(`backend must be an object, got ${describeValue(backend)}`);
  }
  checkKnownOptions(backend, ['weight', 'zone', 'priority', 'maxConnections', 'metadata'], 'backend');
  return {
    name: options.name.replace(/\.$/, ''),
    type,
    port,
    scheme,
    targetType,
    minTtlMs,
    maxTtlMs,
    servers: options.servers,
    timeoutMs: optionalDuration(options.timeoutMs, 'timeoutMs', 2_000),
    tries: optionalNumber(options.tries, 'tries', 2, { min: 1, integer: true }),
    backend,
  };
}

async function resolve(
  resolver: Resolver,
  settings: Settings,
): Promise<{ backends: BackendConfig[]; ttlSeconds: number }> {
  if (settings.type !== 'SRV') {
    const addresses = await addressesOf(resolver, settings.name, settings.type);
    const backends = addresses.map(({ address }) => ({
      ...settings.backend,
      url: urlOf(settings.scheme, address, settings.port),
    }));
    return { backends, ttlSeconds: shortestTtl(addresses, settings) };
  }
  const records = await emptyIfNone(resolver.resolveSrv(settings.name));
  // Tiers in order of SRV priority: the lowest priority value is tier 0, the primary.
  const priorities = [...new Set(records.map((record) => record.priority))].sort((a, b) => a - b);
  // Each distinct target is resolved once (several records often name one host on several ports),
  // all of them at once.
  const targets = [...new Set(records.map((record) => record.name.replace(/\.$/, '')))];
  const resolved = new Map(
    await Promise.all(
      targets.map(
        async (target) =>
          [
            target,
            net.isIP(target)
              ? [{ address: target, ttl: Number.POSITIVE_INFINITY }]
              : await addressesOf(resolver, target, settings.targetType),
          ] as const,
      ),
    ),
  );
  const backends: BackendConfig[] = [];
  let ttlSeconds = Number.POSITIVE_INFINITY;
  for (const record of records) {
    const target = record.name.replace(/\.$/, '');
    for (const { address, ttl } of resolved.get(target) ?? []) {
      ttlSeconds = Math.min(ttlSeconds, ttl);
      backends.push({
        ...settings.backend,
        url: urlOf(settings.scheme, address, record.port),
        weight: srvWeight(record.weight, records, record.priority),
        priority: priorities.indexOf(record.priority),
        metadata: { ...settings.backend.metadata, target },
      });
    }
  }
  return { backends, ttlSeconds: Number.isFinite(ttlSeconds) ? ttlSeconds : settings.minTtlMs / 1000 };
}

async function addressesOf(
  resolver: Resolver,
  name: string,
  type: 'A' | 'AAAA' | 'A+AAAA',
): Promise<Address[]> {
  const v4 = type === 'AAAA' ? [] : await emptyIfNone(resolver.resolve4(name, { ttl: true }));
  const v6 = type === 'A' ? [] : await emptyIfNone(resolver.resolve6(name, { ttl: true }));
  return [...v4, ...v6];
}

async function emptyIfNone<T>(lookup: Promise<T[]>): Promise<T[]> {
  try {
    return await lookup;
  } catch (error) {
    if (EMPTY_ANSWER.has((error as NodeJS.ErrnoException).code ?? '')) return [];
    throw error;
  }
}

/**
 * RFC 2782: a weight of 0 gives "a very small chance of being selected" when others of its priority
 * weigh more; when all of them weigh 0, they share equally.
 */
function srvWeight(
  weight: number,
  records: readonly { priority: number; weight: number }[],
  priority: number,
): number {
  if (weight > 0) return weight;
  let smallest = Number.POSITIVE_INFINITY;
  for (const record of records) {
    if (record.priority === priority && record.weight > 0) smallest = Math.min(smallest, record.weight);
  }
  return Number.isFinite(smallest) ? smallest / 100 : 1;
}

function shortestTtl(addresses: readonly Address[], settings: Settings): number {
  let ttl = Number.POSITIVE_INFINITY;
  for (const address of addresses) ttl = Math.min(ttl, address.ttl);
  return Number.isFinite(ttl) ? ttl : settings.minTtlMs / 1000;
}

function clamp(ms: number, settings: Settings): number {
  return Math.min(settings.maxTtlMs, Math.max(settings.minTtlMs, ms));
}

function urlOf(scheme: string, address: string, port: number): string {
  return `${scheme}://${net.isIPv6(address) ? `[${address}]` : address}:${port}`;
}

function lookupError(settings: Settings, error: unknown): DiscoveryResult {
  const code = (error as NodeJS.ErrnoException).code;
  return new Error(
    `dns ${settings.type} ${settings.name}: ${code ?? (error instanceof Error ? error.message : String(error))}`,
    { cause: error },
  );
}
