/**
 * The proxy's own `node:http` servers: bounded request heads and slow clients (431 and 408 written on
 * the socket, as the parser refuses them), and a graceful close that stops accepting, lets what is in
 * flight finish up to a deadline, then cuts every connection that is left, upgraded tunnels included
 * (`closeAllConnections()` does not see those: the proxy tracks them).
 */
import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ProxySettings } from './options.js';
import { sendSocketError } from './respond.js';

function clientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  if (error.code === 'HPE_HEADER_OVERFLOW') {
    sendSocketError(socket, 'EBADREQUEST', 'request headers too large', undefined, { status: 431 });
  } else if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    sendSocketError(socket, 'EREQUESTTIMEOUT', 'request headers too slow', undefined);
  } else {
    sendSocketError(socket, 'EBADREQUEST', 'malformed request', undefined);
  }
}

/** The listeners a proxy put on a server. */
interface Attached {
  readonly handler: (req: IncomingMessage, res: ServerResponse) => void;
  readonly upgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  readonly clientError: (error: NodeJS.ErrnoException, socket: Duplex) => void;
}

/** The servers and tunnels of one proxy. */
export class ProxyServers {
  readonly #servers = new Map<Server, Attached>();
  readonly #tunnels = new Set<() => void>();
  /** Called when the last tunnel closes, while close() waits for them. */
  #noTunnelsLeft: (() => void) | undefined;

  /** WebSocket tunnels open now. */
  get tunnels(): number {
    return this.#tunnels.size;
  }

  /** Registers an open tunnel's teardown; the returned function unregisters it. */
  track(teardown: () => void): () => void {
    this.#tunnels.add(teardown);
    return () => {
      this.#tunnels.delete(teardown);
      if (this.#tunnels.size === 0) this.#noTunnelsLeft?.();
    };
  }

  /** Starts a server for `handler` and `upgrade` on `port` and `host`. */
  async listen(
    settings: ProxySettings,
    handler: (req: IncomingMessage, res: ServerResponse) => void,
    upgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void,
    port: number,
    host: string,
  ): Promise<Server> {
    const server = http.createServer({
      maxHeaderSize: settings.maxHeaderBytes,
      connectionsCheckingInterval: Math.max(100, Math.min(1000, settings.clientHeadersMs / 4)),
    });
    this.attach(server, settings, handler, upgrade);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return server;
  }

  /**
   * Serves `handler` and `upgrade` on `server` (http or https, listening or not): client timeouts,
   * 431/408/400 answers to heads the parser refuses, and a place in `close()`.
   */
  attach(
    server: Server,
    settings: ProxySettings,
    handler: (req: IncomingMessage, res: ServerResponse) => void,
    upgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void,
  ): void {
    server.headersTimeout = settings.clientHeadersMs;
    server.requestTimeout = 0; // bodies may stream for long; the idle timeout covers silence
    server.keepAliveTimeout = 5_000;
    const listeners: Attached = { handler, upgrade, clientError };
    server.on('request', handler);
    server.on('upgrade', upgrade);
    server.on('clientError', clientError);
    this.#servers.set(server, listeners);
  }

  /** Stops serving on `server` without closing it (another proxy takes it over). */
  detach(server: Server): void {
    const listeners = this.#servers.get(server);
    if (listeners === undefined) return;
    server.off('request', listeners.handler);
    server.off('upgrade', listeners.upgrade);
    server.off('clientError', listeners.clientError);
    this.#servers.delete(server);
  }

  /**
   * Stops accepting, waits for connections to finish (and `idle`: the proxy's requests in flight,
   * on servers it does not own too) for up to `timeoutMs`, then cuts every connection and tunnel
   * still open.
   */
  async close(timeoutMs: number, idle: Promise<void> = Promise.resolve()): Promise<void> {
    const closed = [...this.#servers.keys()].map(
      (server) =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
        }),
    );
    let deadline: NodeJS.Timeout | undefined;
    const overdue = new Promise<void>((resolve) => {
      deadline = setTimeout(resolve, timeoutMs);
      deadline.unref();
    });
    const tunnelsDone = new Promise<void>((resolve) => {
      if (this.#tunnels.size === 0) resolve();
      else this.#noTunnelsLeft = resolve;
    });
    await Promise.race([Promise.all([...closed, tunnelsDone, idle]), overdue]);
    clearTimeout(deadline);
    this.#noTunnelsLeft = undefined;
    for (const teardown of [...this.#tunnels]) teardown();
    this.#tunnels.clear();
    for (const server of this.#servers.keys()) server.closeAllConnections();
    await Promise.all(closed);
    this.#servers.clear();
  }
}
