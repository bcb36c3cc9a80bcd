/**
 * Connections to one backend origin: an undici `Pool` with a bound on connections, keep-alive, a
 * connect timeout, and a bounded queue of requests waiting for a connection. When the queue is full
 * a request is refused at once with `EOVERLOADED` (HTTP 503) rather than waiting without limit, so a
 * slow backend cannot pile up unbounded memory and latency in front of it.
 *
 * `stats()` reports undici's counters plus how well connections are reused: requests per
 * connection opened (see docs/benchmarks.md for measured figures).
 */
import { type Dispatcher, Pool as UndiciPool } from 'undici';
import { type Duration, optionalDuration } from '../core/duration.js';
import { McgravityError } from '../core/errors.js';
import { checkKnownOptions, optionalNumber } from '../core/validate.js';

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
  /** Share of requests that went over an already open connection, 0..1. */
  readonly reuseRatio: number;
  /** Connections in use out of `connections`, 0..1. */
  readonly utilisation: number;
}

const KNOWN = ['connections', 'keepAliveTimeoutMs', 'connectTimeoutMs', 'maxPending', 'pipelining'];

/** Checks {@link PoolOptions} and fills defaults. */
export function resolvePoolOptions(
  options: PoolOptions = {},
): Required<{ [K in keyof PoolOptions]: number }> {
  checkKnownOptions(options, KNOWN, 'pool');
  return {
    connections: optionalNumber(options.connections, 'pool.connections', 128, { min: 1, integer: true }),
    keepAliveTimeoutMs: optionalDuration(options.keepAliveTimeoutMs, 'pool.keepAliveTimeoutMs', 60_000),
    connectTimeoutMs: optionalDuration(options.connectTimeoutMs, 'pool.connectTimeoutMs', 5_000),
    maxPending: optionalNumber(options.maxPending, 'pool.maxPending', 1024, { min: 0, integer: true }),
    pipelining: optionalNumber(options.pipelining, 'pool.pipelining', 1, { min: 1, integer: true }),
  };
}

/** Pooled keep-alive connections to one origin. */
export class Pool {
  /** The origin, e.g. `http://10.0.0.1:3000`. */
  readonly origin: string;
  readonly #pool: UndiciPool;
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
    this.#capacity = resolved.connections * resolved.pipelining + resolved.maxPending;
    this.#pool = new UndiciPool(this.origin, {
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
      connectionsOpened: this.#connectionsOpened,
      requests: this.#requests,
      rejected: this.#rejected,
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
