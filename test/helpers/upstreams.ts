/**
 * Real loopback upstreams for tests: `node:http` servers on 127.0.0.1 and ephemeral ports that
 * answer, hang, reset or fail on demand, and close every socket when the test is done.
 */
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import net from 'node:net';

/** A running upstream. */
export interface Upstream {
  readonly url: string;
  readonly port: number;
  readonly server: http.Server;
  /** Requests received so far. */
  readonly requests: http.IncomingMessage[];
  /** Closes the server and destroys every open connection. */
  close(): Promise<void>;
}

/** Starts an HTTP server on 127.0.0.1 with `handler`. */
export async function startUpstream(
  handler: http.RequestListener = (_req, res) => res.end('ok'),
): Promise<Upstream> {
  const requests: http.IncomingMessage[] = [];
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    requests.push(req);
    handler(req, res);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    server,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** An upstream that accepts requests and never answers. */
export function hangingUpstream(): Promise<Upstream> {
  return startUpstream(() => {});
}

/** An upstream that resets the connection as soon as a request arrives. */
export function resettingUpstream(): Promise<Upstream> {
  return startUpstream((req) => req.socket.resetAndDestroy());
}

/** A port on 127.0.0.1 where nothing listens (connections are refused). */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A cleartext HTTP/2 (h2c) upstream: `node:http2`, its sessions, and the streams it serves. */
export interface Http2Upstream {
  readonly url: string;
  readonly sessions: Set<http2.ServerHttp2Session>;
  /** Streams open now, and the most seen at once. */
  readonly load: { open: number; peak: number };
  /** Destroys every session and closes the server. */
  close(): Promise<void>;
}

/**
 * Starts an h2c server on 127.0.0.1 with `handler` (by default: the name, method and path back).
 * `settings` are its HTTP/2 settings (a stream limit, say).
 */
export async function startHttp2Upstream(
  name: string,
  handler: (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void = (req, res) => {
    req.resume();
    req.on('end', () => res.end(`${name} ${req.method} ${req.url}`));
  },
  settings: http2.Settings = {},
): Promise<Http2Upstream> {
  const load = { open: 0, peak: 0 };
  const sessions = new Set<http2.ServerHttp2Session>();
  const server = http2.createServer({ settings }, (req, res) => {
    load.open++;
    load.peak = Math.max(load.peak, load.open);
    res.on('close', () => load.open--);
    handler(req, res);
  });
  server.on('session', (session) => {
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    sessions,
    load,
    close: async () => {
      for (const session of sessions) session.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
