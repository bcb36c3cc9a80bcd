/**
 * `createMcpFetch(cluster)`: a `fetch` for the MCP SDK's `StreamableHTTPClientTransport` that spreads
 * MCP sessions over a cluster of replicas and keeps each session on the replica that owns it.
 *
 * - A request without a session (`initialize`, or any request to a stateless server) is balanced by
 *   the cluster's algorithm. The `Mcp-Session-Id` of the answer pins the session to the replica that
 *   served it; every later request of the session (POST, the GET stream with `Last-Event-ID`, the
 *   DELETE) goes there and nowhere else, even while the replica drains.
 * - When the owner is gone (removed, down by health checks, refusing connections, or answering 404
 *   for a session it forgot), the client gets 404 with the SDK's "Session not found" error, which
 *   tells it to initialise again; or, with `onOwnerGone: 'reinitialize'`, the fetch replays the
 *   session's `initialize` handshake on a live replica and goes on under the client's session id
 *   (server-side session state, such as subscriptions, is not carried over). Either way an event says so.
 * - Retries (by the cluster, always on another replica): any request that never reached a server;
 *   after that only methods safe to repeat (`ping`, `…/list`, `resources/read`, `prompts/get`,
 *   `completion/complete`, `initialize`, notifications), and `tools/call` of tools marked idempotent.
 *   A session's requests are never retried elsewhere: no other replica knows the session.
 * - Per-method and per-tool statistics (requests, HTTP failures, JSON-RPC and tool errors, latency to
 *   the answer over a recent window), read from the response as it streams past, never buffered;
 *   optional circuit breakers per replica and tool, so one failing tool on one replica is avoided
 *   without taking the whole replica out.
 */
import { EventEmitter } from 'eventemitter3';
import type { CircuitBreakerOptions, CircuitPermit, CircuitState } from '../breaker/CircuitBreaker.js';
import { type Cluster, type ClusterFetchInit, servedBy } from '../cluster/Cluster.js';
import { type Clock, systemClock } from '../core/clock.js';
import { type Duration, optionalDuration } from '../core/duration.js';
import { checkKnownOptions, describeValue, optionalNumber } from '../core/validate.js';
import { type Handshake, replayHandshake } from './handshake.js';
import { type McpMethodStats, type MethodCounters, MethodStats } from './MethodStats.js';

export type { McpMethodStats } from './MethodStats.js';

import { type OwnerGoneReason, ownerGoneReason } from './ownerGone.js';
import {
  idempotentToolsFrom,
  isRepeatable,
  jsonRpcError,
  type McpMessage,
  parseMessages,
  SESSION_HEADER,
  SESSION_NOT_FOUND,
  statsKey,
} from './protocol.js';
import { type SessionEntry, SessionTable } from './SessionTable.js';
import { type ToolAdmission, ToolBreakers } from './ToolBreakers.js';
import { type RpcOutcome, watchResponse } from './watchResponse.js';

/** Options of {@link createMcpFetch}. */
export interface McpFetchOptions {
  /**
   * What a request of a session whose replica is gone gets: `'not-found'`, a 404 that makes the SDK
   * client initialise again; or `'reinitialize'`, the session's handshake replayed on a live replica,
   * transparently. @default 'not-found'
   */
  onOwnerGone?: 'not-found' | 'reinitialize';
  /** Tools whose `tools/call` may be retried on another replica (they change nothing, or do it once). */
  idempotentTools?: readonly string[] | ((tool: string) => boolean);
  /**
   * A circuit breaker per replica and tool, fed by the tool's own failures (JSON-RPC errors, results
   * with `isError`, HTTP failures). While one is open, that tool is not called on that replica:
   * requests without a session go to another one, a session's own requests get 503. @default false
   */
  toolBreaker?: CircuitBreakerOptions | false;
  /** Sessions remembered; the least recently used is forgotten past this. @default 10_000 */
  maxSessions?: number;
  /** A session unused this long is forgotten. @default 3_600_000 (1 h) */
  sessionIdleMs?: Duration;
  /** Window of the latency percentiles in `stats()`. @default 60_000 */
  statsWindowMs?: Duration;
  clock?: Clock;
}

/** Events of an {@link McpFetch}. */
export interface McpFetchEvents {
  /** A server issued a session id and the session was pinned to the replica that served it. */
  'session:opened': (info: { sessionId: string; endpointId: string }) => void;
  /** The client ended a session with DELETE. */
  'session:closed': (info: { sessionId: string; endpointId: string }) => void;
  /** A session's replica was gone: the client got 404 (`not-found`), or the session moved (`reinitialized`). */
  'session:lost': (info: {
    sessionId: string;
    endpointId: string;
    reason: 'removed' | 'down' | 'refused' | 'not-found';
    action: 'not-found' | 'reinitialized';
    /** The replica that holds the session now (`reinitialized` only). */
    newEndpointId?: string;
  }) => void;
  /** A tool's breaker on one replica changed state. */
  'tool:circuit': (info: { endpointId: string; tool: string; state: CircuitState }) => void;
}

/** What {@link McpFetch.stats} returns. */
export interface McpFetchStats {
  /** Sessions pinned now. */
  readonly sessions: number;
  /** Sessions pinned now, per endpoint id. */
  readonly sessionsByEndpoint: Readonly<Record<string, number>>;
  /** Per method, and per tool as `tools/call:<name>`. */
  readonly methods: Readonly<Record<string, McpMethodStats>>;
  /** Every per-tool breaker that is not closed. */
  readonly openToolCircuits: readonly { endpointId: string; tool: string; state: CircuitState }[];
}

/** The fetch that {@link createMcpFetch} returns: call it as `fetch`; it also has events and stats. */
export interface McpFetch {
  (input: string | URL | Request, init?: RequestInit): Promise<Response>;
  readonly events: EventEmitter<McpFetchEvents>;
  stats(): McpFetchStats;
}

/** What the fetch keeps per session: enough to replay its handshake elsewhere. */
interface SessionData {
  /** The `initialize` request body, with the headers it was sent with. */
  readonly handshake: Handshake | undefined;
  /** The session id the current replica knows, when it differs from the client's (after a move). */
  serverSessionId: string | undefined;
}

/** One call as the fetch saw it going out, for what it does with the answer. */
interface Call {
  readonly path: string;
  readonly init: ClusterFetchInit;
  /** The call's single JSON-RPC message (a batch has none), and its tool for `tools/call`. */
  readonly only: McpMessage | undefined;
  readonly tool: string | undefined;
  /** The call's per-tool breaker permits. */
  readonly admission: ToolAdmission | undefined;
  readonly counters: MethodCounters | undefined;
  readonly started: number;
  /** The session id as the client knows it. */
  readonly clientSession: string | undefined;
}

const KNOWN = [
  'onOwnerGone',
  'idempotentTools',
  'toolBreaker',
  'maxSessions',
  'sessionIdleMs',
  'statsWindowMs',
  'clock',
];

/** Creates an MCP-aware fetch over `cluster`; see the module comment. */
export function createMcpFetch(cluster: Cluster, options: McpFetchOptions = {}): McpFetch {
  const client = new McpClientFetch(cluster, options);
  const fetch = ((input: string | URL | Request, init?: RequestInit) =>
    client.fetch(input, init)) as McpFetch & { events: EventEmitter<McpFetchEvents> };
  Object.defineProperty(fetch, 'events', { value: client.events, enumerable: true });
  Object.defineProperty(fetch, 'stats', { value: () => client.stats(), enumerable: true });
  return fetch;
}

class McpClientFetch {
  readonly events = new EventEmitter<McpFetchEvents>();
  readonly #cluster: Cluster;
  readonly #reinitialize: boolean;
  readonly #idempotentTool: (tool: string) => boolean;
  readonly #toolBreakers: ToolBreakers | undefined;
  readonly #sessions: SessionTable<SessionData>;
  /** Sessions whose replica was lost: never sent anywhere again (another replica did not issue them). */
  readonly #lost: SessionTable;
  readonly #clock: Clock;
  readonly #methods: MethodStats;

  constructor(cluster: Cluster, options: McpFetchOptions) {
    if (cluster === null || typeof cluster !== 'object' || typeof cluster.fetch !== 'function')
      throw new TypeError(`createMcpFetch needs a Cluster, got ${describeValue(cluster)}`);
    if (options === null || typeof options !== 'object')
      throw new TypeError('createMcpFetch options must be an object');
    checkKnownOptions(options, KNOWN, 'createMcpFetch');
    this.#cluster = cluster;
    const onOwnerGone = options.onOwnerGone ?? 'not-found';
    if (onOwnerGone !== 'not-found' && onOwnerGone !== 'reinitialize')
      throw new TypeError(
        `onOwnerGone must be 'not-found' or 'reinitialize', got ${describeValue(onOwnerGone)}`,
      );
    this.#reinitialize = onOwnerGone === 'reinitialize';
    this.#idempotentTool = idempotentToolsFrom(options.idempotentTools, 'idempotentTools');
    const breaker = options.toolBreaker ?? false;
    if (breaker !== false && (breaker === null || typeof breaker !== 'object'))
      throw new TypeError(
        `toolBreaker must be circuit breaker options or false, got ${describeValue(breaker)}`,
      );
    this.#clock = options.clock ?? systemClock;
    this.#toolBreakers =
      breaker === false
        ? undefined
        : new ToolBreakers(breaker, this.#clock, (info) => this.events.emit('tool:circuit', info));
    this.#methods = new MethodStats(
      optionalDuration(options.statsWindowMs, 'statsWindowMs', 60_000),
      this.#clock,
    );
    this.#sessions = new SessionTable<SessionData>({
      maxSessions: optionalNumber(options.maxSessions, 'maxSessions', 10_000, { min: 1, integer: true }),
      idleMs: optionalDuration(options.sessionIdleMs, 'sessionIdleMs', 3_600_000),
      clock: this.#clock,
    });
    this.#lost = new SessionTable({ maxSessions: 10_000, idleMs: 3_600_000, clock: this.#clock });
  }

  async fetch(input: string | URL | Request, init: RequestInit = {}): Promise<Response> {
    const request = input instanceof Request ? input : undefined;
    const url = new URL(request?.url ?? String(input));
    const path = url.pathname + url.search;
    const method = (init.method ?? request?.method ?? 'GET').toUpperCase();
    const headers = new Headers(init.headers ?? request?.headers);
    const body = init.body ?? request?.body ?? null;
    const messages = method === 'POST' && typeof body === 'string' ? parseMessages(body) : undefined;
    const only = messages?.length === 1 ? messages[0] : undefined;
    const clientSession = headers.get(SESSION_HEADER) ?? undefined;
    const session = clientSession === undefined ? undefined : this.#sessions.get(clientSession);
    if (session === undefined && clientSession !== undefined && this.#lost.get(clientSession) !== undefined) {
      return sessionNotFound(); // its replica is gone: no other one issued it, so none may see it
    }
    if (session?.data.serverSessionId !== undefined)
      headers.set(SESSION_HEADER, session.data.serverSessionId);

    const tool = only?.method === 'tools/call' ? only.name : undefined;
    let admission: ToolAdmission | undefined;
    if (tool !== undefined && this.#toolBreakers !== undefined) {
      if (session !== undefined) {
        admission = this.#toolBreakers.admitPinned(session.endpointId, tool);
        if (admission === undefined) return toolCircuitOpen(tool, session.endpointId, only?.id);
      } else {
        admission = this.#toolBreakers.admitBalanced(tool);
      }
    }
    const exclude = admission?.exclude;

    const fetchInit: ClusterFetchInit = {
      ...init,
      method,
      headers,
      body,
      idempotent:
        messages === undefined
          ? method === 'GET'
          : messages.every((m) => isRepeatable(m, this.#idempotentTool)),
      ...(request !== undefined && init.body === undefined && body !== null ? { duplex: 'half' } : {}),
      ...(request?.signal !== undefined && init.signal === undefined ? { signal: request.signal } : {}),
      ...(session === undefined ? {} : { pin: session.endpointId }),
      ...(exclude === undefined ? {} : { exclude }),
    };
    const counters = only?.id !== undefined ? this.#methods.counters(statsKey(only)) : undefined;
    if (counters !== undefined) counters.requests++;
    const call: Call = {
      path,
      init: fetchInit,
      only,
      tool,
      admission,
      counters,
      started: this.#clock.now(),
      clientSession,
    };

    let response: Response;
    try {
      response = await this.#cluster.fetch(path, fetchInit);
    } catch (error) {
      const gone =
        session === undefined ? undefined : await ownerGoneReason(this.#cluster, session.endpointId, error);
      if (gone !== undefined && clientSession !== undefined && session !== undefined) {
        admission?.releaseAll();
        return this.#ownerGone(call, clientSession, session, gone);
      }
      if (counters !== undefined) counters.errors++;
      if (session !== undefined) admission?.servedBy(session.endpointId)?.failure();
      else admission?.releaseAll();
      throw error;
    }
    const endpointId = servedBy(response)?.id;

    if (response.status === 404 && clientSession !== undefined && session !== undefined) {
      admission?.releaseAll();
      await response.body?.cancel();
      return this.#ownerGone(call, clientSession, session, 'not-found');
    }
    if (method === 'DELETE' && clientSession !== undefined && response.status < 500) {
      this.#sessions.delete(clientSession);
      if (session !== undefined)
        this.events.emit('session:closed', { sessionId: clientSession, endpointId: session.endpointId });
    }
    const issued = response.headers.get(SESSION_HEADER);
    if (
      issued !== null &&
      endpointId !== undefined &&
      session === undefined &&
      messages?.some((m) => m.method === 'initialize')
    ) {
      this.#sessions.set(issued, endpointId, {
        handshake: { body: body as string, headers: [...headers] },
        serverSessionId: undefined,
      });
      this.events.emit('session:opened', { sessionId: issued, endpointId });
    }
    return this.#observe(response, call, endpointId, session?.data);
  }

  stats(): McpFetchStats {
    const methods = this.#methods.summary();
    const openToolCircuits = this.#toolBreakers?.notClosed() ?? [];
    // Sessions of a removed endpoint stay in the table until their next request answers 404 (with an
    // event) or they expire; they are not counted.
    const byEndpoint = this.#sessions.countFor(this.#cluster.endpoints);
    let sessions = 0;
    for (const count of Object.values(byEndpoint)) sessions += count;
    return {
      sessions,
      sessionsByEndpoint: byEndpoint,
      methods,
      openToolCircuits,
    };
  }

  /**
   * Statistics, breaker outcome and session-id translation on the way back. The body is watched as it
   * passes (no buffering) when there is an answer to wait for; otherwise the response is returned as
   * it came, or re-headed when a moved session's id must be shown as the client knows it.
   */
  #observe(
    response: Response,
    call: Call,
    endpointId: string | undefined,
    moved: SessionData | undefined,
  ): Response {
    const { only, counters, started, clientSession, admission } = call;
    const renamed = moved?.serverSessionId !== undefined && response.headers.has(SESSION_HEADER);
    let breaker: CircuitPermit | undefined;
    if (admission !== undefined) {
      if (endpointId !== undefined) breaker = admission.servedBy(endpointId);
      else admission.releaseAll();
    }
    const record = (outcome: RpcOutcome | 'http-error') => {
      if (counters !== undefined) {
        if (outcome === 'http-error') counters.errors++;
        else if (outcome === 'rpc-error' || outcome === 'tool-error') counters.rpcErrors++;
        if (outcome !== 'cancelled') counters.latency.record(this.#clock.now() - started);
      }
      if (outcome === 'cancelled' || outcome === 'unknown') breaker?.release();
      else if (outcome === 'ok') breaker?.success();
      else breaker?.failure();
    };
    const type = response.headers.get('content-type') ?? '';
    const sse = type.startsWith('text/event-stream');
    const watch =
      (counters !== undefined || breaker !== undefined) &&
      response.ok &&
      response.body !== null &&
      only?.id !== undefined &&
      (sse || type.startsWith('application/json'));
    if (!watch) {
      if (counters !== undefined || breaker !== undefined)
        record(response.ok || response.status === 202 ? 'unknown' : 'http-error');
      if (!renamed) return response;
    }
    const headers = new Headers(response.headers);
    if (renamed && clientSession !== undefined) headers.set(SESSION_HEADER, clientSession);
    const body =
      watch && response.body !== null && only?.id !== undefined
        ? watchResponse(response.body, sse, only.id, record)
        : response.body;
    return new Response(body, { status: response.status, statusText: response.statusText, headers });
  }

  /** The owner of a session is gone: answer 404, or move the session and send the request again. */
  async #ownerGone(
    call: Call,
    clientSession: string,
    session: SessionEntry<SessionData>,
    reason: OwnerGoneReason | 'not-found',
  ): Promise<Response> {
    const { path, init } = call;
    const endpointId = session.endpointId;
    this.#sessions.delete(clientSession);
    if (this.#reinitialize && session.data.handshake !== undefined) {
      const moved = await replayHandshake(this.#cluster, path, session.data.handshake, init, endpointId);
      if (moved !== undefined) {
        const data: SessionData = { handshake: session.data.handshake, serverSessionId: moved.sessionId };
        this.#sessions.set(clientSession, moved.endpointId, data);
        this.events.emit('session:lost', {
          sessionId: clientSession,
          endpointId,
          reason,
          action: 'reinitialized',
          newEndpointId: moved.endpointId,
        });
        const headers = new Headers(init.headers);
        headers.set(SESSION_HEADER, moved.sessionId);
        const { exclude: _exclude, ...rest } = init;
        const response = await this.#cluster.fetch(path, { ...rest, headers, pin: moved.endpointId });
        return this.#observe(response, call, moved.endpointId, data);
      }
    }
    this.#lost.set(clientSession, endpointId, undefined);
    this.events.emit('session:lost', { sessionId: clientSession, endpointId, reason, action: 'not-found' });
    if (call.counters !== undefined) call.counters.errors++;
    return sessionNotFound();
  }
}

/** The 404 an MCP client takes as "initialise a new session". */
function sessionNotFound(): Response {
  return new Response(jsonRpcError(SESSION_NOT_FOUND, 'Session not found'), {
    status: 404,
    headers: { 'content-type': 'application/json' },
  });
}

function toolCircuitOpen(tool: string, endpointId: string, id: string | number | undefined): Response {
  return new Response(
    jsonRpcError(-32000, `tool ${tool} is failing on replica ${endpointId}; try again later`, id ?? null),
    { status: 503, headers: { 'content-type': 'application/json', 'retry-after': '1' } },
  );
}
