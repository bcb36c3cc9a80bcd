/**
 * WebSocket (and other HTTP/1.1 upgrade) tunnels, on the same path as requests: the same admission
 * (closing: 503, malformed: 400, no route: 404, rate limit: 429), request id, forwarding headers and
 * affinity; an {@link Attempt} that counts the tunnel in flight on its endpoint for as long as it is
 * open; a first-byte timeout on the handshake (504); connect failures tried on another endpoint; and
 * every error before the upstream's 101 written as an HTTP answer with the proxy's JSON body.
 *
 * Once the upstream switches protocols, bytes flow both ways with backpressure (`pipe`) until either
 * side closes, or until the tunnel has been silent for the route's `tunnelIdleMs` (off by default).
 * Each open tunnel is registered with the proxy, which cuts those still open at its close deadline.
 */
import http, { type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Attempt } from '../cluster/Attempt.js';
import { McgravityError } from '../core/errors.js';
import { neverSent } from '../core/failures.js';
import { rateLimitHeaders } from '../limit/headers.js';
import { type Admitted, admit, consumeLimit, isRefusal, RATE_LIMITED } from './admission.js';
import type { Affinity } from './affinity.js';
import { requestIdOf, upstreamHeaders, upstreamPathOf } from './forwarding.js';
import type { ProxySettings } from './options.js';
import { classify, sendSocketError } from './respond.js';

/** Connection attempts of one upgrade (the first included) before a connect failure is final. */
const MAX_TRIES = 3;

/** What an upgrade needs of its proxy. */
export interface UpgradeHost {
  readonly settings: ProxySettings;
  readonly affinity: Affinity;
  readonly closing: boolean;
  /** Registers an open tunnel's teardown; the returned function unregisters it. */
  track(teardown: () => void): () => void;
}

/** Proxies one upgrade request; never throws (every failure is answered on the socket). */
export async function proxyUpgrade(
  host: UpgradeHost,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
): Promise<void> {
  const { settings } = host;
  socket.on('error', () => socket.destroy());
  const requestId = requestIdOf(req, settings.requestIdHeader);
  const admitted = admit(req, settings, host.closing);
  if (isRefusal(admitted)) {
    sendSocketError(socket, admitted.code, admitted.message, requestId, { status: admitted.status });
    return;
  }
  const decision = consumeLimit(admitted, settings, req);
  if (decision !== undefined) {
    const result = await decision;
    if (!result.allowed) {
      sendSocketError(socket, RATE_LIMITED.code, RATE_LIMITED.message, requestId, {
        headers: rateLimitHeaders(result),
      });
      return;
    }
  }
  const { route } = admitted;
  const cluster = route.pick(req, settings.random());
  const headers = upstreamHeaders(req, admitted.from, requestId, settings);
  headers.connection = 'Upgrade';
  if (req.headers.upgrade !== undefined) headers.upgrade = req.headers.upgrade;
  const choice = host.affinity.choose(cluster, req, admitted.from.client);
  const tried = new Set<string>();
  for (let tries = 1; ; tries++) {
    if (socket.destroyed) return;
    let attempt: Attempt;
    try {
      attempt = cluster.begin({
        tried,
        ...(choice.key === undefined ? {} : { key: choice.key }),
        ...(choice.prefer === undefined ? {} : { prefer: choice.prefer }),
      });
    } catch (error) {
      const { code, status, message } = classify(error);
      sendSocketError(socket, code, message, requestId, { status });
      return;
    }
    const outcome = await handshake(host, req, socket, head, admitted, attempt, headers);
    if (outcome === undefined) return;
    if (neverSent(outcome) && tries < MAX_TRIES) continue;
    const { code, status, message } = classify(outcome);
    sendSocketError(socket, code, message, requestId, { status });
    return;
  }
}

/**
 * One try of the handshake against the attempt's endpoint. Resolves with nothing once the upgrade
 * (or the upstream's refusal of it) has been relayed, or with the error that ended the try first.
 */
function handshake(
  host: UpgradeHost,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  admitted: Admitted,
  attempt: Attempt,
  headers: Record<string, string | string[]>,
): Promise<unknown> {
  const { route } = admitted;
  const path = upstreamPathOf(route, admitted.path, req, host.settings);
  const url = new URL(attempt.endpoint.url);
  const target = url.origin + url.pathname.replace(/\/+$/, '') + path;
  return new Promise<unknown>((resolve) => {
    const upstream = http.request(target, { method: req.method, headers, agent: false });
    let settled = false;
    const settle = (value: unknown) => {
      if (settled) return;
      settled = true;
      clock.clearTimeout(firstByte);
      socket.off('close', onClientGone);
      resolve(value);
    };
    const clock = host.settings.clock;
    const firstByte = clock.setTimeout(() => {
      const error = new McgravityError(
        'EUPSTREAMTIMEOUT',
        `upstream did not answer the upgrade within ${route.firstByteMs} ms`,
      );
      attempt.failed(error);
      upstream.destroy();
      settle(error);
    }, route.firstByteMs);
    const onClientGone = () => {
      attempt.failed(new McgravityError('EABORTED', 'the client left during the upgrade'), ABORTED);
      upstream.destroy();
      settle(undefined);
    };
    socket.once('close', onClientGone);

    upstream.once('upgrade', (response, upstreamSocket: Socket, upstreamHead: Buffer) => {
      if (settled) {
        upstreamSocket.destroy();
        return;
      }
      settle(undefined);
      attempt.answered(101);
      attempt.openTunnel();
      socket.write(
        rawHead(`HTTP/1.1 101 ${response.statusMessage ?? 'Switching Protocols'}`, response.rawHeaders),
      );
      if (upstreamHead.length > 0) socket.write(upstreamHead);
      if (head.length > 0) upstreamSocket.write(head);
      let untrack: (() => void) | undefined;
      const sweeper = route.tunnelSweeper;
      const watched = sweeper?.watch(
        () => teardown(),
        () => upstreamSocket.bytesRead + upstreamSocket.bytesWritten,
      );
      const teardown = () => {
        upstreamSocket.destroy();
        socket.destroy();
        if (watched !== undefined) sweeper?.unwatch(watched);
        untrack?.();
        attempt.end();
      };
      untrack = host.track(teardown);
      upstreamSocket.on('error', teardown);
      upstreamSocket.on('close', teardown);
      socket.on('close', teardown);
      upstreamSocket.pipe(socket);
      socket.pipe(upstreamSocket);
    });
    upstream.once('response', (response) => {
      if (settled) return;
      settle(undefined);
      // The upstream declined the upgrade: pass its answer on as it is.
      attempt.answered(response.statusCode ?? 502);
      socket.write(
        rawHead(`HTTP/1.1 ${response.statusCode} ${response.statusMessage ?? ''}`, response.rawHeaders),
      );
      response.on('close', () => attempt.end());
      response.pipe(socket);
    });
    upstream.once('error', (error) => {
      if (settled) return;
      attempt.failed(error);
      settle(error);
    });
    upstream.end();
  });
}

/** A signal already aborted: the attempt's outcome counts neither way (the client left). */
const ABORTED = AbortSignal.abort();

function rawHead(statusLine: string, rawHeaders: readonly string[]): string {
  let text = `${statusLine}\r\n`;
  for (let i = 0; i < rawHeaders.length; i += 2) text += `${rawHeaders[i]}: ${rawHeaders[i + 1]}\r\n`;
  return `${text}\r\n`;
}
