/**
 * The proxy's servers (`node:http`, `node:https`, `node:http2`): bounded request heads and slow
 * clients (431 and 408 written on the socket, as the parser refuses them), and a graceful close that
 * stops accepting, lets what is in flight finish up to a deadline, then cuts every connection that is
 * left, upgraded tunnels included (`closeAllConnections()` does not see those: the proxy tracks them).
 *
 * An HTTP/2 server keeps no list of its connections: the proxy keeps its sessions (closed with
 * GOAWAY, so that streams in flight finish and the client opens no new ones) and, on a TLS port that
 * also speaks HTTP/1.1, those HTTP/1.1 sockets with their requests in flight (idle ones are closed at
 * once, busy ones after their last response).
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Http2SecureServer, Http2Server, Http2Session } from 'node:http2';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { isHttp2, isHttp2Server, type ListenerSettings, listenerServer, type ProxyServer } from './http2.js';
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
  /** An HTTP/2 server's connections, which it does not track itself. */
  readonly http2?: Http2Connections;
}

/** The connections of one HTTP/2 server: its sessions, and the HTTP/1.1 sockets of a TLS port. */
class Http2Connections {
  readonly sessions = new Set<Http2Session>();
  /** HTTP/1.1 sockets, with their requests in flight. */
  readonly sockets = new Map<Socket, number>();
  #closing = false;
  readonly #idleMs: number;

  constructor(idleMs: number) {
    this.#idleMs = idleMs;
  }

  readonly onSession = (session: Http2Session): void => {
    this.sessions.add(session);
    session.on('error', ignore); // the 'close' that follows removes it
    session.once('close', () => this.sessions.delete(session));
    // Idle: no frame either way. Streams in flight are let finish; new ones are refused by GOAWAY.
    session.setTimeout(this.#idleMs, () => session.close());
    if (this.#closing) session.close();
  };

  /** Counts an HTTP/1.1 request on its socket; a socket of a closing server ends after its last. */
  readonly onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    if (isHttp2(req)) return;
    const socket = req.socket;
    const sockets = this.sockets;
    if (!sockets.has(socket)) socket.once('close', () => sockets.delete(socket));
    sockets.set(socket, (sockets.get(socket) ?? 0) + 1);
    res.once('close', () => {
      const left = (sockets.get(socket) ?? 1) - 1;
      if (!sockets.has(socket)) return;
      sockets.set(socket, left);
      if (left === 0 && this.#closing) socket.end();
    });
  };

  /** HTTP/1.1 connections that never sent a request are tracked from their TLS handshake. */
  readonly onConnection = (socket: Socket): void => {
    if ((socket as Socket & { alpnProtocol?: string | false }).alpnProtocol === 'h2') return;
    if (this.sockets.has(socket)) return;
    this.sockets.set(socket, 0);
    socket.once('close', () => this.sockets.delete(socket));
  };

  /** GOAWAY to every session; idle HTTP/1.1 sockets end now, busy ones after their response. */
  close(): void {
    this.#closing = true;
    for (const session of this.sessions) session.close();
    for (const [socket, inflight] of this.sockets) if (inflight === 0) socket.end();
  }

  /** Cuts whatever is left. */
  destroy(): void {
    for (const session of this.sessions) session.destroy();
    for (const socket of this.sockets.keys()) socket.destroy();
  }
}

function ignore(): void {}

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

  /** Starts a server for `handler` and `upgrade` on `port` and `host`, as `settings` ask (TLS, HTTP/2). */
  async listen(
    settings: ProxySettings & ListenerSettings,
    handler: (req: IncomingMessage, res: ServerResponse) => void,
    upgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void,
    port: number,
    host: string,
  ): Promise<ProxyServer> {
    const server = listenerServer(settings);
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
    server: ProxyServer,
    settings: ProxySettings & Partial<ListenerSettings>,
    handler: (req: IncomingMessage, res: ServerResponse) => void,
    upgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void,
  ): void {
    const http1 = server as Server;
    http1.headersTimeout = settings.clientHeadersMs;
    http1.requestTimeout = 0; // bodies may stream for long; the idle timeout covers silence
    http1.keepAliveTimeout = 5_000;
    const http2 = isHttp2Server(server) ? new Http2Connections(settings.http2?.idleMs ?? 120_000) : undefined;
    const listeners: Attached =
      http2 === undefined ? { handler, upgrade, clientError } : { handler, upgrade, clientError, http2 };
    if (http2 !== undefined) {
      const h2 = server as Http2SecureServer & Http2Server;
      h2.on('session', http2.onSession);
      h2.on('request', http2.onRequest);
      h2.on('secureConnection', http2.onConnection);
    }
    http1.on('request', handler);
    http1.on('upgrade', upgrade);
    http1.on('clientError', clientError);
    this.#servers.set(server as Server, listeners);
  }

  /** Stops serving on `server` without closing it (another proxy takes it over). */
  detach(server: ProxyServer): void {
    const http1 = server as Server;
    const listeners = this.#servers.get(http1);
    if (listeners === undefined) return;
    http1.off('request', listeners.handler);
    http1.off('upgrade', listeners.upgrade);
    http1.off('clientError', listeners.clientError);
    const http2 = listeners.http2;
    if (http2 !== undefined) {
      http1.off('session' as 'request', http2.onSession as never);
      http1.off('request', http2.onRequest);
      http1.off('secureConnection' as 'request', http2.onConnection as never);
    }
    this.#servers.delete(http1);
  }

  /**
   * Stops accepting, waits for connections to finish (and `idle`: the proxy's requests in flight,
   * on servers it does not own too) for up to `timeoutMs`, then cuts every connection and tunnel
   * still open.
   */
  async close(timeoutMs: number, idle: Promise<void> = Promise.resolve()): Promise<void> {
    const closed = [...this.#servers].map(
      ([server, { http2 }]) =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          if (http2 === undefined) server.closeIdleConnections();
          else http2.close();
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
    for (const [server, { http2 }] of this.#servers) {
      if (http2 === undefined) server.closeAllConnections();
      else http2.destroy();
    }
    await Promise.all(closed);
    this.#servers.clear();
  }
}
