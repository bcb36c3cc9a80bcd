/**
 * A layer 4 (TCP) proxy: each client connection is balanced to one of the cluster's endpoints and
 * its bytes are relayed both ways, unread, until either side closes. What HAProxy's `mode tcp` and
 * nginx's `stream` module do, for protocols the HTTP proxy cannot read (Redis, PostgreSQL, MQTT, a
 * custom MCP transport).
 *
 * - **Balancing.** Any balancer; the client's address is the hash key, so `consistent-hash`,
 *   `maglev` and `ip-hash` keep a client on one backend. Each connection is one attempt of the
 *   cluster from connect to close (counted in flight, so `least-connections` and `least-request`
 *   see open connections), with health checks, outlier detection and breakers as for HTTP.
 * - **Connect failures** (refused, unreachable, timed out) are tried again on another endpoint, up
 *   to `connectAttempts`, before any client byte was sent; they count against the endpoint.
 * - **Limits.** `maxConnections` in total (more are refused at once), `maxConnections` per backend
 *   (a full backend is skipped), `connectTimeoutMs`, and `idleTimeoutMs` with no byte either way.
 * - **Backpressure.** Each direction is a `pipe()`: a side that reads slowly pauses the other, so a
 *   connection holds at most a socket buffer per direction, whatever flows through it.
 * - **Half-close.** A FIN from one side is passed on and the other side may go on sending (as
 *   Redis's `QUIT`, or a client that shuts down its writes and waits for the answer, expect).
 * - **PROXY protocol** (v1 or v2) to the backends, as an option, so they see the client's address.
 * - **Close.** `close()` stops accepting, lets connections finish up to a deadline, then cuts them.
 */
import net, { type Server, type Socket } from 'node:net';
import type { Attempt } from '../cluster/Attempt.js';
import { type Cluster, type ClusterOptions, createCluster } from '../cluster/Cluster.js';
import { type Clock, systemClock } from '../core/clock.js';
import { type Duration, optionalDuration } from '../core/duration.js';
import { socketAddress } from '../core/endpoint.js';
import { McgravityError } from '../core/errors.js';
import { checkKnownOptions, describeValue, optionalNumber } from '../core/validate.js';
import { isCluster } from '../proxy/routes.js';
import { type ProxyProtocolVersion, proxyProtocolHeader } from './proxyProtocol.js';

/** Options of {@link createTcpProxy}. */
export interface TcpProxyOptions {
  /** The backends (`tcp://host:port` URLs), as a cluster or its options (then owned and closed by the proxy). */
  cluster: Cluster | ClusterOptions;
  /** Time to open a connection to a backend; a backend that takes longer is tried as failed. @default 5_000 */
  connectTimeoutMs?: Duration;
  /** A connection with no byte either way for this long is closed; 0 for never. @default 600_000 */
  idleTimeoutMs?: Duration;
  /** Backends tried for one client connection when connecting fails (the first included). @default 3 */
  connectAttempts?: number;
  /** Client connections open at once; more are refused at once. @default 10_000 */
  maxConnections?: number;
  /** Send a PROXY protocol header first on each backend connection. @default false */
  proxyProtocol?: ProxyProtocolVersion | false;
  /** Time source of the close deadline. @default systemClock */
  clock?: Clock;
}

/** Counters of a {@link TcpProxy}. */
export interface TcpProxyStats {
  /** Client connections open now. */
  readonly open: number;
  /** Client connections accepted since the start. */
  readonly accepted: number;
  /** Client connections refused at `maxConnections`. */
  readonly refused: number;
  /** Client connections closed because no backend could be connected to. */
  readonly failed: number;
  /** Client connections closed by `idleTimeoutMs`. */
  readonly idleClosed: number;
  /** Bytes from clients to backends. */
  readonly bytesReceived: number;
  /** Bytes from backends to clients. */
  readonly bytesSent: number;
}

/** A running TCP proxy. */
export interface TcpProxy {
  /** The cluster it balances over. */
  readonly cluster: Cluster;
  /** Takes one client connection (a `net.Server`'s `'connection'` listener). */
  handler(socket: Socket): void;
  /** Starts a `net.Server` on `port` and `host` (default `127.0.0.1`) serving this proxy. */
  listen(port: number, host?: string): Promise<Server>;
  /**
   * Serves the connections of a server you made (create it with `allowHalfOpen: true`, so that a
   * client's half-close is passed on). `close()` closes it like its own; {@link TcpProxy.detach}
   * hands it back.
   */
  attach(server: Server): void;
  /** Stops taking connections from `server`; those open stay until they close (or `close()`). */
  detach(server: Server): void;
  /** Client connections open now. */
  readonly inflight: number;
  stats(): TcpProxyStats;
  /**
   * Stops accepting, waits for open connections to close (up to `timeoutMs`, default 10 s), then
   * cuts those left and closes an owned cluster.
   */
  close(options?: { timeoutMs?: Duration }): Promise<void>;
}

const OPTIONS = [
  'cluster',
  'connectTimeoutMs',
  'idleTimeoutMs',
  'connectAttempts',
  'maxConnections',
  'proxyProtocol',
  'clock',
];

/**
 * Creates a TCP proxy; see the module comment.
 * @throws TypeError or RangeError naming the option that is wrong
 * @example
 * const redis = createTcpProxy({ cluster: { backends: ['tcp://10.0.0.7:6379', 'tcp://10.0.0.8:6379'] } });
 * await redis.listen(6379, '0.0.0.0');
 */
export function createTcpProxy(options: TcpProxyOptions): TcpProxy {
  return new TcpProxyImpl(options);
}

/** One client connection and its backend connection. */
interface Relay {
  readonly client: Socket;
  upstream: Socket | undefined;
  attempt: Attempt | undefined;
  connected: boolean;
}

class TcpProxyImpl implements TcpProxy {
  readonly cluster: Cluster;
  readonly #owned: boolean;
  readonly #connectTimeoutMs: number;
  readonly #idleTimeoutMs: number;
  readonly #connectAttempts: number;
  readonly #maxConnections: number;
  readonly #proxyProtocol: ProxyProtocolVersion | false;
  readonly #clock: Clock;
  readonly #relays = new Set<Relay>();
  readonly #servers = new Set<Server>();
  #accepted = 0;
  #refused = 0;
  #failed = 0;
  #idleClosed = 0;
  #bytesReceived = 0;
  #bytesSent = 0;
  #closing = false;
  #lastClosed: (() => void) | undefined;

  constructor(options: TcpProxyOptions) {
    if (options === null || typeof options !== 'object') throw new TypeError('createTcpProxy needs options');
    checkKnownOptions(options, OPTIONS, 'createTcpProxy');
    this.#connectTimeoutMs = optionalDuration(options.connectTimeoutMs, 'connectTimeoutMs', 5_000);
    this.#idleTimeoutMs = optionalDuration(options.idleTimeoutMs, 'idleTimeoutMs', 600_000);
    this.#connectAttempts = optionalNumber(options.connectAttempts, 'connectAttempts', 3, {
      min: 1,
      integer: true,
    });
    this.#maxConnections = optionalNumber(options.maxConnections, 'maxConnections', 10_000, {
      min: 1,
      integer: true,
    });
    const proxyProtocol = options.proxyProtocol ?? false;
    if (proxyProtocol !== false && proxyProtocol !== 'v1' && proxyProtocol !== 'v2') {
      throw new TypeError(`proxyProtocol must be 'v1', 'v2' or false, got ${describeValue(proxyProtocol)}`);
    }
    this.#proxyProtocol = proxyProtocol;
    this.#clock = options.clock ?? systemClock;
    if (isCluster(options.cluster)) {
      this.cluster = options.cluster;
      this.#owned = false;
    } else if (options.cluster !== null && typeof options.cluster === 'object') {
      // Connections are not requests: HTTP retries do not apply, connect attempts do.
      this.cluster = createCluster({ name: 'tcp', retry: false, ...options.cluster });
      this.#owned = true;
    } else {
      throw new TypeError(
        `cluster must be a Cluster or cluster options, got ${describeValue(options.cluster)}`,
      );
    }
  }

  readonly handler = (client: Socket): void => {
    if (this.#closing || this.#relays.size >= this.#maxConnections) {
      this.#refused++;
      client.on('error', ignore);
      client.destroy();
      return;
    }
    this.#accepted++;
    const relay: Relay = { client, upstream: undefined, attempt: undefined, connected: false };
    this.#relays.add(relay);
    client.on('error', ignore); // a reset client: 'close' follows and ends the relay
    client.once('close', () => this.#closed(relay));
    if (this.#idleTimeoutMs > 0) {
      // The client socket sees every byte both ways (it reads one direction and writes the other).
      client.setTimeout(this.#idleTimeoutMs, () => {
        this.#idleClosed++;
        client.destroy();
      });
    }
    this.#connect(relay, new Set(), 1);
  };

  get inflight(): number {
    return this.#relays.size;
  }

  attach(server: Server): void {
    server.on('connection', this.handler);
    this.#servers.add(server);
  }

  detach(server: Server): void {
    server.off('connection', this.handler);
    this.#servers.delete(server);
  }

  listen(port: number, host = '127.0.0.1'): Promise<Server> {
    const server = net.createServer({ allowHalfOpen: true, noDelay: true });
    this.attach(server);
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve(server);
      });
    });
  }

  stats(): TcpProxyStats {
    let bytesReceived = this.#bytesReceived;
    let bytesSent = this.#bytesSent;
    for (const { client } of this.#relays) {
      bytesReceived += client.bytesRead;
      bytesSent += client.bytesWritten;
    }
    return {
      open: this.#relays.size,
      accepted: this.#accepted,
      refused: this.#refused,
      failed: this.#failed,
      idleClosed: this.#idleClosed,
      bytesReceived,
      bytesSent,
    };
  }

  async close(options: { timeoutMs?: Duration } = {}): Promise<void> {
    const timeoutMs = optionalDuration(options.timeoutMs, 'timeoutMs', 10_000);
    this.#closing = true;
    const stopped = [...this.#servers].map(
      (server) => new Promise<void>((resolve) => server.close(() => resolve())),
    );
    this.#servers.clear();
    if (this.#relays.size > 0) {
      let timer: unknown;
      await Promise.race([
        new Promise<void>((resolve) => {
          this.#lastClosed = resolve;
        }),
        new Promise<void>((resolve) => {
          timer = this.#clock.setTimeout(resolve, timeoutMs);
        }),
      ]);
      this.#clock.clearTimeout(timer);
      for (const relay of this.#relays) {
        relay.client.destroy();
        relay.upstream?.destroy();
      }
    }
    await Promise.all(stopped);
    if (this.#owned) await this.cluster.close({ timeoutMs: 0 });
  }

  /** Picks an endpoint not tried yet and connects to it; on failure, tries the next. */
  #connect(relay: Relay, tried: Set<string>, attemptNumber: number): void {
    const { client } = relay;
    if (client.destroyed) return;
    let attempt: Attempt;
    try {
      attempt = this.cluster.begin({ key: client.remoteAddress ?? '', tried });
    } catch {
      this.#failed++;
      client.destroy();
      return;
    }
    const max = attempt.endpoint.maxConnections;
    if (max !== undefined && attempt.endpoint.inflight > max) {
      attempt.end(); // full: not a failure of the backend, and not an attempt of this connection
      this.#connect(relay, tried, attemptNumber);
      return;
    }
    relay.attempt = attempt;
    const upstream = net.connect({
      ...socketAddress(attempt.endpoint.url),
      allowHalfOpen: true,
      noDelay: true,
    });
    relay.upstream = upstream;
    upstream.setTimeout(this.#connectTimeoutMs, () =>
      upstream.destroy(new McgravityError('EUPSTREAMTIMEOUT', `connect to ${attempt.endpoint.id} timed out`)),
    );
    const refused = (error: Error) => {
      attempt.failed(error);
      relay.attempt = undefined;
      relay.upstream = undefined;
      if (attemptNumber < this.#connectAttempts && !client.destroyed) {
        this.#connect(relay, tried, attemptNumber + 1);
      } else {
        this.#failed++;
        client.destroy();
      }
    };
    upstream.once('error', refused);
    upstream.once('connect', () => {
      upstream.off('error', refused);
      upstream.setTimeout(0);
      attempt.answered(200);
      attempt.openTunnel();
      relay.connected = true;
      if (client.destroyed) {
        upstream.destroy();
        return;
      }
      if (this.#proxyProtocol !== false) {
        upstream.write(
          proxyProtocolHeader(this.#proxyProtocol, {
            sourceAddress: client.remoteAddress,
            sourcePort: client.remotePort,
            destinationAddress: client.localAddress,
            destinationPort: client.localPort,
          }),
        );
      }
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
      follow(client, upstream);
      follow(upstream, client);
      // Each direction ends the other's writes when it ends (half-close), with backpressure.
      client.pipe(upstream);
      upstream.pipe(client);
    });
  }

  #closed(relay: Relay): void {
    if (!this.#relays.delete(relay)) return;
    this.#bytesReceived += relay.client.bytesRead;
    this.#bytesSent += relay.client.bytesWritten;
    if (!relay.connected) relay.upstream?.destroy(); // still connecting: nobody is left to serve
    relay.attempt?.end();
    if (this.#relays.size === 0) this.#lastClosed?.();
  }
}

function ignore(): void {}

/**
 * When `from` closes, closes `to`: at once if `from` was cut (reset, destroyed, timed out), or once
 * `to` has written what it holds if `from` ended cleanly (its end was piped into `to`).
 */
function follow(from: Socket, to: Socket): void {
  from.once('close', () => {
    if (!from.readableEnded || to.writableFinished) to.destroy();
    else to.once('finish', () => to.destroy());
  });
}
