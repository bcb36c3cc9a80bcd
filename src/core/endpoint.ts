/**
 * The endpoint model: what a user configures ({@link BackendConfig}) and what a balancer sees
 * ({@link Endpoint}). A balancer only reads endpoints; plain objects of the right shape are accepted.
 */
import { checkKnownOptions, checkNumber, describeValue } from './validate.js';

/** One backend as configured. A bare string is shorthand for `{ url }`. */
export interface BackendConfig {
  /**
   * Absolute URL of the backend: `http:` or `https:` (e.g. `http://10.0.0.5:3000`), or `tcp:` with a
   * port for a TCP proxy's backends (e.g. `tcp://10.0.0.7:6379`).
   */
  url: string;
  /** Stable identifier. @default the URL's `host` (hostname and port) */
  id?: string;
  /** Relative share of traffic; 0 takes no new traffic. @default 1 */
  weight?: number;
  /** Locality (zone, rack, region) for zone-aware balancing. */
  zone?: string;
  /** Priority tier: 0 is primary, higher tiers are backups taken only when lower ones cannot serve. @default 0 */
  priority?: number;
  /** Most concurrent connections to this backend. */
  maxConnections?: number;
  /** Free-form data such as capabilities or region, visible to custom balancers. */
  metadata?: Record<string, unknown>;
}

/** What a {@link Balancer} sees of a backend. Its load fields are live, kept by whoever owns it. */
export interface Endpoint {
  /** Unique within one balancer. */
  readonly id: string;
  /** The backend's URL. */
  readonly url: string;
  /** Relative share of traffic, a finite number >= 0; 0 takes no traffic. */
  readonly weight: number;
  /** Locality, used by the zone-aware wrapper. */
  readonly zone?: string;
  /** Priority tier, used by the priority wrapper. 0 (or absent) is primary. */
  readonly priority?: number;
  /** Free-form data from the configuration. */
  readonly metadata?: Readonly<Record<string, unknown>>;
  /** Requests in flight to this endpoint right now. */
  readonly inflight: number;
  /** Peak-EWMA of response time in milliseconds; absent or 0 until measured. */
  readonly latencyEwma?: number;
}

/** A {@link BackendConfig} with its defaults applied and every field checked. */
export interface NormalizedBackend {
  readonly id: string;
  readonly url: string;
  readonly weight: number;
  readonly priority: number;
  readonly zone?: string;
  readonly maxConnections?: number;
  readonly metadata?: Readonly<Record<string, unknown>>;
}

/**
 * Checks a backend given as a URL string or a {@link BackendConfig} and fills in defaults.
 * @param option the option path used in error messages, e.g. `backends[2]`
 * @throws TypeError or RangeError naming the offending field
 */
export function normalizeBackend(input: string | BackendConfig, option = 'backend'): NormalizedBackend {
  const config: BackendConfig = typeof input === 'string' ? { url: input } : input;
  if (config === null || typeof config !== 'object') {
    throw new TypeError(
      `${option} must be a URL string or an object with a url, got ${describeValue(input)}`,
    );
  }
  if (typeof input !== 'string')
    checkKnownOptions(
      config,
      ['url', 'id', 'weight', 'zone', 'priority', 'maxConnections', 'metadata'],
      option,
    );
  let parsed: URL;
  try {
    parsed = new URL(config.url);
  } catch {
    throw new TypeError(`${option}.url must be an absolute http(s) URL, got ${describeValue(config.url)}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:' && parsed.protocol !== 'tcp:') {
    throw new TypeError(`${option}.url must use http:, https: or tcp:, got ${JSON.stringify(config.url)}`);
  }
  if (parsed.protocol === 'tcp:' && (parsed.port === '' || parsed.hostname === '')) {
    throw new TypeError(
      `${option}.url: a tcp: URL needs a host and a port, got ${JSON.stringify(config.url)}`,
    );
  }
  if (parsed.username !== '' || parsed.password !== '') {
    // They would never be sent (requests go to the origin), and every stats reader would show them.
    throw new TypeError(
      `${option}.url must not carry credentials (user:password@host): send an Authorization header instead`,
    );
  }
  const id = config.id ?? parsed.host;
  if (typeof id !== 'string' || id === '') {
    throw new TypeError(`${option}.id must be a non-empty string, got ${describeValue(config.id)}`);
  }
  const normalized: {
    -readonly [K in keyof NormalizedBackend]: NormalizedBackend[K];
  } = {
    id,
    url: config.url,
    weight: config.weight === undefined ? 1 : checkNumber(config.weight, `${option}.weight`, { min: 0 }),
    priority:
      config.priority === undefined
        ? 0
        : checkNumber(config.priority, `${option}.priority`, { min: 0, integer: true }),
  };
  if (config.zone !== undefined) {
    if (typeof config.zone !== 'string') {
      throw new TypeError(`${option}.zone must be a string, got ${describeValue(config.zone)}`);
    }
    normalized.zone = config.zone;
  }
  if (config.maxConnections !== undefined) {
    normalized.maxConnections = checkNumber(config.maxConnections, `${option}.maxConnections`, {
      min: 1,
      integer: true,
    });
  }
  if (config.metadata !== undefined) {
    if (config.metadata === null || typeof config.metadata !== 'object') {
      throw new TypeError(`${option}.metadata must be an object, got ${describeValue(config.metadata)}`);
    }
    normalized.metadata = config.metadata;
  }
  return normalized;
}

/**
 * The HTTP origin of a backend URL: its own for `http:` and `https:`, `http://host:port` for `tcp:`
 * (whose URL has no origin), so that a TCP backend can be checked over HTTP on the same port.
 */
export function httpOrigin(url: string | URL): string {
  const parsed = typeof url === 'string' ? new URL(url) : url;
  return parsed.protocol === 'tcp:' ? `http://${parsed.host}` : parsed.origin;
}

/** The host (without IPv6 brackets) and port a backend URL connects to. */
export function socketAddress(url: string | URL): { host: string; port: number } {
  const parsed = typeof url === 'string' ? new URL(url) : url;
  const port = Number(parsed.port || (parsed.protocol === 'https:' ? 443 : 80));
  return { host: parsed.hostname.replace(/^\[|\]$/g, ''), port };
}
