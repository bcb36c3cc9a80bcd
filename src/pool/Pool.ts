/**
 * Connections to one backend origin: an undici `Pool` with a bound on connections, keep-alive, a
 * connect timeout, and a bounded queue of requests waiting for a connection. When the queue is full
 * a request is refused at once with `EOVERLOADED` (HTTP 503) rather than waiting without limit, so a
 * slow backend cannot pile up unbounded memory and latency in front of it.
 *
 * `stats()` reports undici's counters plus how well connections are reused: requests per
 * connection opened (see docs/benchmarks.md for measured figures).
 */
import type { ConnectionOptions } from 'node:tls';
import { Agent, type Dispatcher, Pool as UndiciPool } from 'undici';
import { type Duration, optionalDuration } from '../core/duration.js';
import { McgravityError } from '../core/errors.js';
import { checkKnownOptions, describeValue, optionalNumber } from '../core/validate.js';
import { Http2Pool } from './Http2Pool.js';

/** Options of {@link Pool}, per backend. */
export interface PoolOptions {
  /** Most connections to the backend (`max_connections` in a proxy config). @default 128 */
  connections?: number;
  /** How long an idle connection is kept open. @default 60_000 */
  keepAliveTimeoutMs?: Duration;
  /** Time allowed to open a connection. @default 5_000 */
  connectTimeoutMs?: Duration;
  /** Requests allowed to wait for a connection; more are refused with EOVERLOADED. @default 1024 */
  maxPending?: number;
  /** Requests pipelined on one connection (HTTP/1.1). @default 1 */
  pipelining?: number;
  /**
   * How the backends are spoken to: HTTP/1.1 (undici), `h2` (HTTP/2 over TLS, for `https:`
   * backends) or `h2c` (HTTP/2 in cleartext with prior knowledge, for `http:` backends), both on
   * `node:http2` sessions (see Http2Pool.ts for why). @default 'http1'
   */
  protocol?: 'http1' | 'h2' | 'h2c';
  /** HTTP/2: most streams on one connection (fewer if the backend allows fewer). @default 100 */
  maxConcurrentStreams?: number;
  /**
   * TLS towards `https:` backends: a CA (`ca`) for a private certificate authority, `servername`,
   * a client certificate (`cert`, `key`) for mutual TLS, `rejectUnauthorized: false` for testing.
   */
  tls?: ConnectionOptions;
}

/** {@link PoolOptions} with defaults applied. */
export interface ResolvedPoolOptions {
  readonly connections: number;
  readonly keepAliveTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly maxPending: number;
  readonly pipelining: number;
  readonly protocol: 'http1' | 'h2' | 'h2c';
  readonly maxConcurrentStreams: number;
  readonly tls: ConnectionOptions | undefined;
}

/** Counters of {@link Pool.stats}. */
export interface PoolStats {
  /** Open connections. */
  readonly connected: number;
  /** Open connections with no request on them. */
  readonly free: number;
  /** Requests waiting for a connection. */
  readonly pending: number;
  /** Requests being served. */
  readonly running: number;
  /** Connections opened since the pool was made. */
  readonly connectionsOpened: number;
  /** Requests sent since the pool was made. */
  readonly requests: number;
  /** Requests refused because the pending queue was full. */
  readonly rejected: number;
  /** HTTP/2: requests sent again on another connection because the backend refused their stream (GOAWAY). */
  readonly resent: number;
  /** Share of requests that went over an already open connection, 0..1. */
  readonly reuseRatio: number;
  /** Connections in use out of `connections`, 0..1. */
  readonly utilisation: number;
}

const KNOWN = [
  'connections',
  'keepAliveTimeoutMs',
  'connectTimeoutMs',
  'maxPending',
  'pipelining',
  'protocol',
  'maxConcurrentStreams',
  'tls',
];
const PROTOCOLS: readonly string[] = ['http1', 'h2', 'h2c'];

/** Checks {@link PoolOptions} and fills defaults. */
export function resolvePoolOptions(options: PoolOptions = {}): ResolvedPoolOptions {
  checkKnownOptions(options, KNOWN, 'pool');
  const protocol = options.protocol ?? 'http1';
  if (!PROTOCOLS.includes(protocol)) {
    throw new TypeError(`pool.protocol must be 'http1', 'h2' or 'h2c', got ${describeValue(protocol)}`);
  }
  if (options.tls !== undefined && (options.tls === null || typeof options.tls !== 'object')) {
    throw new TypeError(`pool.tls must be TLS options such as { ca }, got ${describeValue(options.tls)}`);
  }
  return {
    protocol,
    maxConcurrentStreams: optionalNumber(options.maxConcurrentStreams, 'pool.maxConcurrentStreams', 100, {
      min: 1,
      integer: true,
    }),
    tls: options.tls,
    connections: optionalNumber(options.connections, 'pool.connections', 128, { min: 1, integer: true }),
    keepAliveTimeoutMs: optionalDuration(options.keepAliveTimeoutMs, 'pool.keepAliveTimeoutMs', 60_000),
    connectTimeoutMs: optionalDuration(options.connectTimeoutMs, 'pool.connectTimeoutMs', 5_000),
    maxPending: optionalNumber(options.maxPending, 'pool.maxPending', 1024, { min: 0, integer: true }),
    pipelining: optionalNumber(options.pipelining, 'pool.pipelining', 1, { min: 1, integer: true }),
  };
}

/**
 * A dispatcher for requests to any origin over HTTP/2 (an `h2` or `h2c` pool's settings), with one
 * {@link Http2Pool} per origin: what HTTP health checks of HTTP/2 backends go through.
 */
export function http2Dispatcher(options: PoolOptions): Dispatcher {
  const resolved = resolvePoolOptions(options);
  return new Agent({
    factory: (origin) =>
      new Http2Pool(String(origin), {
        connections: 1,
        maxConcurrentStreams: resolved.maxConcurrentStreams,
        connectTimeoutMs: resolved.connectTimeoutMs,
        keepAliveTimeoutMs: resolved.keepAliveTimeoutMs,
        tls: resolved.tls,
      }),
  });
}

/** undici's connect options (its types do not take `undefined` for absent fields). */
type UndiciConnect = Exclude<NonNullable<UndiciPool.Options['connect']>, (...args: never[]) => unknown>;

/** Pooled keep-alive connections to one origin. */
export class Pool {
  /** The origin, e.g. `http://10.0.0.1:3000`. */
  readonly origin: string;
  readonly #pool: UndiciPool | Http2Pool;
  readonly #connections: number;
  readonly #maxPending: number;
  readonly #capacity: number;
  readonly #finish = () => this.finish();
  #outstanding = 0;
  #connectionsOpened = 0;
  #requests = 0;
  #rejected = 0;

  constructor(origin: string, options: PoolOptions = {}) {
    const resolved = resolvePoolOptions(options);
    this.origin = new URL(origin).origin;
    this.#connections = resolved.connections;
    this.#maxPending = resolved.maxPending;
    if (resolved.protocol !== 'http1') {
      const scheme = resolved.protocol === 'h2' ? 'https:' : 'http:';
      if (!this.origin.startsWith(scheme)) {
        throw new TypeError(
          `pool.protocol '${resolved.protocol}' needs ${scheme} backends (${resolved.protocol === 'h2' ? 'HTTP/2 over TLS' : 'cleartext HTTP/2'}), got ${this.origin}`,
        );
      }
      this.#capacity = resolved.connections * resolved.maxConcurrentStreams + resolved.maxPending;
      this.#pool = new Http2Pool(this.origin, {
        connections: resolved.connections,
        maxConcurrentStreams: resolved.maxConcurrentStreams,
        connectTimeoutMs: resolved.connectTimeoutMs,
        keepAliveTimeoutMs: resolved.keepAliveTimeoutMs,
        tls: resolved.tls,
      });
      return;
    }
    this.#capacity = resolved.connections * resolved.pipelining + resolved.maxPending;
    this.#pool = new UndiciPool(this.origin, {
      ...(resolved.tls === undefined ? {} : { connect: resolved.tls as UndiciConnect }),
      connections: resolved.connections,
      keepAliveTimeout: resolved.keepAliveTimeoutMs,
      keepAliveMaxTimeout: Math.max(resolved.keepAliveTimeoutMs, 1),
      connectTimeout: resolved.connectTimeoutMs,
      pipelining: resolved.pipelining,
      // The cluster applies its own first-byte and idle timeouts; undici's must not cut streams short.
      headersTimeout: 0,
      bodyTimeout: 0,
    });
    this.#pool.on('connect', () => {
      this.#connectionsOpened++;
    });
  }

  /** The undici dispatcher, for `fetch(url, { dispatcher })` and the proxy's streaming path. */
  get dispatcher(): Dispatcher {
    return this.#pool;
  }

  /**
   * Counts a request about to be sent, or throws EOVERLOADED when `connections × pipelining` are
   * busy and `maxPending` more already wait. Pair it with {@link Pool.finish}. (Counted here rather
   * than read from undici's `stats`, which sums over every connection on each read.)
   */
  admit(): void {
    if (this.#outstanding >= this.#capacity) {
      this.#rejected++;
      throw new McgravityError(
        'EOVERLOADED',
        `${this.origin}: ${this.#maxPending} requests already wait for a connection`,
      );
    }
    this.#outstanding++;
    this.#requests++;
  }

  /** A request counted by {@link Pool.admit} is done (its response ended, or it failed). */
  finish(): void {
    if (this.#outstanding > 0) this.#outstanding--;
  }

  /** Sends a request (see undici `Dispatcher.request`), refusing it when the queue is full. */
  request(options: Omit<Dispatcher.RequestOptions, 'origin'>): Promise<Dispatcher.ResponseData> {
    try {
      this.admit();
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#pool.request(options).then(
      (response) => {
        response.body.once('close', this.#finish);
        return response;
      },
      (error: unknown) => {
        this.finish();
        throw error;
      },
    );
  }

  /** Counters now. */
  stats(): PoolStats {
    const s = this.#pool.stats;
    return {
      connected: s.connected,
      free: s.free,
      pending: s.pending,
      running: s.running,
      connectionsOpened:
        this.#pool instanceof Http2Pool ? this.#pool.connectionsOpened : this.#connectionsOpened,
      requests: this.#requests,
      rejected: this.#rejected,
      resent: this.#pool instanceof Http2Pool ? this.#pool.resent : 0,
      reuseRatio: this.#requests === 0 ? 0 : Math.max(0, 1 - this.#connectionsOpened / this.#requests),
      utilisation: (s.connected - s.free) / this.#connections,
    };
  }

  /** Waits for running requests to finish, then closes every connection. */
  close(): Promise<void> {
    return this.#pool.close();
  }

  /** Closes every connection now, failing requests in flight. */
  destroy(error?: Error): Promise<void> {
    return this.#pool.destroy(error ?? null);
  }
}

/** Closes pools gracefully, destroying them (cutting what is still open) after `timeoutMs`. */
export async function closePools(pools: readonly Pool[], timeoutMs: number): Promise<void> {
  let deadline: NodeJS.Timeout | undefined;
  const overdue = new Promise<'overdue'>((resolve) => {
    deadline = setTimeout(() => resolve('overdue'), timeoutMs);
    deadline.unref();
  });
  const graceful = Promise.all(pools.map((pool) => pool.close())).then(() => 'closed' as const);
  const result = await Promise.race([graceful, overdue]);
  clearTimeout(deadline);
  if (result === 'overdue') await Promise.all(pools.map((pool) => pool.destroy()));
}
