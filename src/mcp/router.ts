/**
 * MCP session routing for the proxy: every request of an MCP session (`Mcp-Session-Id`) reaches the
 * replica that issued the session; requests without one are balanced.
 *
 * - Stateless mode (default): the session id the client sees is the owner's opaque token, a dot, and
 *   the server's id. The token is stripped on the way in, so proxy replicas that share the affinity
 *   secret route a session alike with no shared state. A table still counts sessions for metrics.
 * - Table mode: this proxy remembers session → endpoint (LRU with idle expiry); ids pass unchanged.
 *
 * A session it cannot route (unknown token or table entry) is answered 404, the MCP signal to
 * initialise again. A request body whose every JSON-RPC message is safe to repeat may be retried on
 * another replica.
 */
import type { IncomingMessage } from 'node:http';
import type { Cluster } from '../cluster/Cluster.js';
import type { ClusterStreamHead } from '../cluster/ResponseRelay.js';
import type { Clock } from '../core/clock.js';
import { type Duration, optionalDuration } from '../core/duration.js';
import type { Endpoint } from '../core/endpoint.js';
import { checkKnownOptions, describeValue, optionalNumber } from '../core/validate.js';
import { idempotentToolsFrom, isRepeatable, parseMessages, SESSION_HEADER } from './protocol.js';
import { SessionTable } from './SessionTable.js';

/**
 * MCP session affinity: every request of an MCP session (`Mcp-Session-Id`) reaches the replica that
 * issued the session; requests without one are balanced, and safe MCP methods are retried elsewhere.
 */
export interface McpAffinity {
  /**
   * `'stateless'`: the session id the client sees is prefixed with an opaque token of the owning
   * endpoint (an HMAC under `affinitySecret`, never its address) and the prefix is stripped on the way
   * in, so proxy replicas that share the secret route a session alike with no shared state.
   * `'table'`: this proxy remembers session → endpoint (LRU with idle expiry); ids pass unchanged.
   * @default 'stateless'
   */
  mode?: 'stateless' | 'table';
  /** Sessions remembered per cluster (table mode routes by them; stateless mode only counts). @default 100_000 */
  maxSessions?: number;
  /** A session unused this long is forgotten. @default 3_600_000 (1 h) */
  sessionIdleMs?: Duration;
  /** Tools whose `tools/call` may be retried on another replica: names, or a function. */
  idempotentTools?: readonly string[] | ((tool: string) => boolean);
}

/** A request's MCP session: the id the client sent, and the endpoint that owns it. */
export interface McpSessionRoute {
  readonly clientId: string;
  readonly endpointId: string;
}

/** How the router names endpoints in stateless session ids (the proxy's affinity tokens). */
export interface EndpointTokens {
  tokenOf(cluster: Cluster, endpoint: Endpoint): string;
  endpointOf(cluster: Cluster, token: string): string | undefined;
}

/** Routes MCP sessions to their owners; see the module comment. */
export class McpSessionRouter {
  readonly #stateless: boolean;
  readonly #maxSessions: number;
  readonly #idleMs: number;
  readonly #idempotentTool: (tool: string) => boolean;
  readonly #clock: Clock;
  readonly #tokens: EndpointTokens;
  readonly #tables = new Map<Cluster, SessionTable>();

  constructor(options: McpAffinity, clock: Clock, tokens: EndpointTokens) {
    if (options === null || typeof options !== 'object')
      throw new TypeError(`sessionAffinity.mcp must be an object, got ${describeValue(options)}`);
    checkKnownOptions(
      options,
      ['mode', 'maxSessions', 'sessionIdleMs', 'idempotentTools'],
      'sessionAffinity.mcp',
    );
    const mode = options.mode ?? 'stateless';
    if (mode !== 'stateless' && mode !== 'table')
      throw new TypeError(
        `sessionAffinity.mcp.mode must be 'stateless' or 'table', got ${describeValue(mode)}`,
      );
    this.#stateless = mode === 'stateless';
    this.#maxSessions = optionalNumber(options.maxSessions, 'sessionAffinity.mcp.maxSessions', 100_000, {
      min: 1,
      integer: true,
    });
    this.#idleMs = optionalDuration(options.sessionIdleMs, 'sessionAffinity.mcp.sessionIdleMs', 3_600_000);
    this.#idempotentTool = idempotentToolsFrom(
      options.idempotentTools,
      'sessionAffinity.mcp.idempotentTools',
    );
    this.#clock = clock;
    this.#tokens = tokens;
  }

  /** True in stateless mode (session tokens are handed to clients). */
  get stateless(): boolean {
    return this.#stateless;
  }

  /**
   * The owner of the request's session: undefined when the request has none (balanced), null when its
   * session cannot be routed. In stateless mode the token is stripped from the id sent upstream.
   */
  route(
    cluster: Cluster,
    req: IncomingMessage,
    headers: Record<string, string | string[]>,
  ): McpSessionRoute | null | undefined {
    const clientId = req.headers[SESSION_HEADER];
    if (typeof clientId !== 'string' || clientId === '') return undefined;
    const table = this.#table(cluster);
    if (!this.#stateless) {
      const entry = table.get(clientId);
      return entry === undefined ? null : { clientId, endpointId: entry.endpointId };
    }
    const dot = clientId.indexOf('.');
    if (dot <= 0) return null;
    const endpointId = this.#tokens.endpointOf(cluster, clientId.slice(0, dot));
    if (endpointId === undefined) return null;
    headers[SESSION_HEADER] = clientId.slice(dot + 1);
    // Counted for sessions(), and its idle time refreshed; another proxy replica may have opened it.
    if (table.get(clientId) === undefined) table.set(clientId, endpointId, undefined);
    return { clientId, endpointId };
  }

  /**
   * Learns from an answer: a new session id (prefixed in stateless mode), an ended or unknown one.
   * Returns true when it changed the answer's headers (`head.headers`, then to be written as changed).
   */
  learn(
    cluster: Cluster,
    req: IncomingMessage,
    head: ClusterStreamHead,
    session: McpSessionRoute | undefined,
  ): boolean {
    const table = this.#table(cluster);
    const issued = head.header(SESSION_HEADER);
    let rewritten = false;
    if (issued !== undefined && issued !== '') {
      const clientId = this.#stateless ? `${this.#tokens.tokenOf(cluster, head.endpoint)}.${issued}` : issued;
      if (clientId !== issued) {
        head.headers[SESSION_HEADER] = clientId;
        rewritten = true;
      }
      if (session === undefined) table.set(clientId, head.endpoint.id, undefined);
    }
    if (
      session !== undefined &&
      (head.statusCode === 404 || (req.method === 'DELETE' && head.statusCode < 300))
    ) {
      table.delete(session.clientId);
    }
    return rewritten;
  }

  /** Forgets a session whose owner is gone. */
  forget(cluster: Cluster, session: McpSessionRoute): void {
    this.#table(cluster).delete(session.clientId);
  }

  /** True when every JSON-RPC message of a kept request body may be sent again on another replica. */
  repeatable(body: Buffer): boolean {
    const messages = parseMessages(body.toString('utf8'));
    return messages?.every((message) => isRepeatable(message, this.#idempotentTool)) === true;
  }

  /** Sessions seen and not idle, per cluster name and endpoint id. */
  sessions(): Record<string, Record<string, number>> {
    const result: Record<string, Record<string, number>> = {};
    for (const [cluster, table] of this.#tables) result[cluster.name] = table.countFor(cluster.endpoints);
    return result;
  }

  #table(cluster: Cluster): SessionTable {
    let table = this.#tables.get(cluster);
    if (table === undefined) {
      table = new SessionTable({ maxSessions: this.#maxSessions, idleMs: this.#idleMs, clock: this.#clock });
      this.#tables.set(cluster, table);
    }
    return table;
  }
}
