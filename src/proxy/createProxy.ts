/**
 * `createProxy()`: a reverse proxy as a `node:http` request handler (also Express middleware), with
 * routing, traffic splitting, session affinity, rate limits, retries on other endpoints through the
 * clusters, header hygiene, streaming both ways with backpressure, WebSocket upgrades, and JSON
 * errors with the status each code maps to.
 *
 * One request, top to bottom (each step in its own file; Exchange.ts carries the request through
 * them as one object):
 * 1. ordering.ts: pipelined requests on one connection wait their turn when one is not safe;
 * 2. admission.ts: closing (503), malformed (400), route (404), rate limit (429);
 * 3. forwarding.ts: request id, upstream headers, the path sent upstream;
 * 4. affinity.ts or mcp/router.ts: which endpoint the request should stay on;
 * 5. body.ts: a small body kept for replay, a large one streamed with a limit;
 * 6. `cluster.streamInto()`: picked, retried, relayed into the response with an idle timeout and no
 *    total timeout (SSE and long downloads flow);
 * 7. respond.ts: every error answer.
 * Upgrades take the same steps in upgrade.ts; server.ts owns `listen()` and `close()`;
 * requestRecord.ts keeps what the access log and the diagnostics end message report.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Cluster } from '../cluster/Cluster.js';
import { type Duration, optionalDuration } from '../core/duration.js';
import { type McpAffinity, McpSessionRouter } from '../mcp/router.js';
import { proxyRequestEndChannel } from '../observe/diagnostics.js';
import { Affinity, checkKeyedAffinity } from './affinity.js';
import { Exchange } from './Exchange.js';
import { adoptAuthority, headerListOver, isHttp2, type ProxyServer } from './http2.js';
import type { Proxy as ProxyContract, ProxyOptions, ProxySettings } from './options.js';
import { resolveProxyOptions } from './options.js';
import { inOrder } from './ordering.js';
import { logWhenClosed, newRecord } from './requestRecord.js';
import { sendError } from './respond.js';
import { ProxyServers } from './server.js';
import { proxyUpgrade, type UpgradeHost } from './upgrade.js';

export type { McpAffinity } from '../mcp/router.js';
export type { CookieAffinity } from './affinity.js';
export { targetPath } from './forwarding.js';
export type { Http2ListenOptions, ProxyServer, ProxyTlsOptions } from './http2.js';
export type {
  AccessLogEntry,
  Proxy,
  ProxyErrorInfo,
  ProxyOptions,
  ProxyRoute,
  ProxyTimeouts,
  UpstreamRequest,
  UpstreamResponse,
} from './options.js';
export type {
  ProxyRateLimit,
  ProxyRateLimitExemption,
  ProxyRateLimits,
  RateLimitKeySource,
  RateLimitMatch,
} from './rateLimits.js';

/** Creates a reverse proxy. */
export function createProxy(options: ProxyOptions): ProxyContract {
  return new ReverseProxy(options);
}

class ReverseProxy implements ProxyContract, UpgradeHost {
  readonly settings: ProxySettings;
  readonly affinity: Affinity;
  readonly #mcp: McpSessionRouter | undefined;
  readonly #servers = new ProxyServers();
  #inflight = 0;
  /** Resolves close()'s wait once the last request in flight ends. */
  #idle: (() => void) | undefined;
  #closing = false;

  constructor(options: ProxyOptions) {
    this.settings = resolveProxyOptions(options);
    const mode = this.settings.sessionAffinity;
    const mcp =
      mode === 'mcp' ? {} : typeof mode === 'object' && mode !== null && 'mcp' in mode ? mode.mcp : undefined;
    const keyed = mcp === undefined ? checkKeyedAffinity(mode) : undefined;
    const mcpStateless = mcp !== undefined && (mcp as McpAffinity)?.mode !== 'table';
    this.affinity = new Affinity(
      keyed,
      this.settings.affinitySecret,
      mcpStateless || (typeof keyed === 'object' && 'cookie' in keyed),
    );
    this.#mcp = mcp === undefined ? undefined : new McpSessionRouter(mcp, this.settings.clock, this.affinity);
  }

  get inflight(): number {
    return this.#inflight;
  }

  get tunnels(): number {
    return this.#servers.tunnels;
  }

  get clusters(): Readonly<Record<string, Cluster>> {
    return this.settings.clusters;
  }

  get closing(): boolean {
    return this.#closing;
  }

  track(teardown: () => void): () => void {
    return this.#servers.track(teardown);
  }

  handler = (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void): void => {
    if (isHttp2(req)) {
      if (headerListOver(req, this.settings.http2?.maxHeaderListBytes ?? this.settings.maxHeaderBytes)) {
        sendError(res, 'EBADREQUEST', 'request headers too large', undefined, { status: 431 });
        return;
      }
      // Streams are independent: no pipelining order between them.
      adoptAuthority(req);
      this.#guarded(req, res, next, undefined);
    } else {
      inOrder(this.#guarded, req, res, next);
    }
  };

  /** Starts a request's handling, with its record when an access log or a subscriber wants it. */
  readonly #guarded = (
    req: IncomingMessage,
    res: ServerResponse,
    next: ((error?: unknown) => void) | undefined,
    done: (() => void) | undefined,
  ): void => {
    const settings = this.settings;
    const published = proxyRequestEndChannel.hasSubscribers;
    // What the request's end reports; made only when an access log or a subscriber wants it.
    const record = published || settings.accessLog !== undefined ? newRecord() : undefined;
    if (record !== undefined && settings.accessLog !== undefined)
      logWhenClosed(req, res, record, settings.accessLog, settings.clock, settings.logger);
    const startedAt = published ? settings.clock.now() : undefined;
    new Exchange(this, req, res, next, record, done, startedAt).start();
  };

  get mcp(): McpSessionRouter | undefined {
    return this.#mcp;
  }

  enter(): void {
    this.#inflight++;
  }

  leave(): void {
    if (--this.#inflight === 0 && this.#idle !== undefined) this.#idle();
  }

  upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    proxyUpgrade(this, req, socket, head).catch(() => socket.destroy());
  };

  listen(port: number, host = '127.0.0.1'): Promise<ProxyServer> {
    return this.#servers.listen(this.settings, this.handler, this.upgrade, port, host);
  }

  attach(server: ProxyServer): void {
    if (server === null || typeof server !== 'object' || typeof server.on !== 'function')
      throw new TypeError('attach needs a node:http or node:https Server');
    this.#servers.attach(server, this.settings, this.handler, this.upgrade);
  }

  detach(server: ProxyServer): void {
    this.#servers.detach(server);
  }

  async close(options: { timeoutMs?: Duration } = {}): Promise<void> {
    this.#closing = true;
    const timeoutMs = optionalDuration(options.timeoutMs, 'timeoutMs', 10_000);
    const idle =
      this.#inflight === 0
        ? undefined
        : new Promise<void>((resolve) => {
            this.#idle = resolve;
          });
    await this.#servers.close(timeoutMs, idle);
    this.#idle = undefined;
    for (const sweeper of this.settings.sweepers) sweeper.close();
    await Promise.all(this.settings.owned.map((cluster) => cluster.close({ timeoutMs })));
  }

  mcpSessions(): Record<string, Record<string, number>> {
    return this.#mcp?.sessions() ?? {};
  }
}
