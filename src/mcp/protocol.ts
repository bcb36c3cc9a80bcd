/**
 * The facts of MCP's Streamable HTTP transport that load balancing acts on, for every revision in
 * use (2025-03-26, 2025-06-18, 2025-11-25 and 2026-07-28):
 *
 * - one endpoint serves POST (JSON-RPC messages), GET (a standalone SSE stream, until 2026-07-28) and
 *   DELETE (ends a session);
 * - a stateful server issues `Mcp-Session-Id` on the `initialize` response (the SDK repeats it on
 *   later responses) and answers an unknown session with 404, which tells the client to initialise
 *   again; 2026-07-28 removes sessions and instead names the method and tool in `Mcp-Method` and
 *   `Mcp-Name` request headers, so that intermediaries route without reading the body;
 * - some methods only read, and may be sent twice without harm.
 *
 * Pure functions over strings and headers: no HTTP server, no cluster. The proxy and the client-side
 * fetch both use them.
 */

import { describeValue } from '../core/validate.js';

/** Request header and response header carrying the session id. */
export const SESSION_HEADER = 'mcp-session-id';
/** Request header naming the JSON-RPC method (revision 2026-07-28). */
export const METHOD_HEADER = 'mcp-method';
/** Request header naming the tool, prompt or resource the method acts on (revision 2026-07-28). */
export const NAME_HEADER = 'mcp-name';
/** Request header carrying the negotiated protocol revision after `initialize`. */
export const PROTOCOL_VERSION_HEADER = 'mcp-protocol-version';

/**
 * Methods that only read (or start a session that a retry simply replaces), safe to send again on
 * another replica when the first attempt failed. `tools/call` is not among them: a tool may act.
 */
const SAFE_METHODS = new Set([
  'initialize',
  'ping',
  'resources/read',
  'prompts/get',
  'completion/complete',
  'server/discover',
]);

/** True when a method may be repeated: the list above and every `…/list`. */
export function isSafeMethod(method: string): boolean {
  return SAFE_METHODS.has(method) || method.endsWith('/list');
}

/**
 * True when a message may be sent again on another replica after a failure: a safe method, a
 * notification, or `tools/call` of a tool `idempotentTool` accepts; never an answer to the server.
 */
export function isRepeatable(message: McpMessage, idempotentTool: (tool: string) => boolean): boolean {
  const method = message.method;
  if (method === undefined) return false;
  if (method.startsWith('notifications/') || isSafeMethod(method)) return true;
  return method === 'tools/call' && message.name !== undefined && idempotentTool(message.name);
}

/** Checks an `idempotentTools` option (tool names, or a function) and makes it a predicate. */
export function idempotentToolsFrom(
  value: readonly string[] | ((tool: string) => boolean) | undefined,
  option: string,
): (tool: string) => boolean {
  if (typeof value === 'function') return value;
  if (value === undefined) return () => false;
  if (Array.isArray(value) && value.every((tool) => typeof tool === 'string')) {
    const tools = new Set(value);
    return (tool) => tools.has(tool);
  }
  throw new TypeError(`${option} must be an array of tool names or a function, got ${describeValue(value)}`);
}

/** One JSON-RPC message of a POST body, as far as routing and statistics need it. */
export interface McpMessage {
  /** The method; undefined for a response the client sends back to the server. */
  readonly method: string | undefined;
  /** The request id; undefined for a notification. */
  readonly id: string | number | undefined;
  /** `params.name` of `tools/call` and `prompts/get`, `params.uri` of `resources/read`. */
  readonly name: string | undefined;
}

/**
 * The messages of a POST body (one message or a batch of them), or undefined when the body is not
 * JSON-RPC. Bodies are small (a request, not a response), and only strings are read.
 */
export function parseMessages(body: string): McpMessage[] | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return undefined;
  }
  const list = Array.isArray(parsed) ? parsed : [parsed];
  const messages: McpMessage[] = [];
  for (const item of list) {
    if (item === null || typeof item !== 'object') return undefined;
    const { method, id, params } = item as { method?: unknown; id?: unknown; params?: unknown };
    const name =
      params !== null && typeof params === 'object'
        ? ((params as { name?: unknown }).name ?? (params as { uri?: unknown }).uri)
        : undefined;
    messages.push({
      method: typeof method === 'string' ? method : undefined,
      id: typeof id === 'string' || typeof id === 'number' ? id : undefined,
      name: typeof name === 'string' ? name : undefined,
    });
  }
  return messages;
}

/** The statistics key of a message: its method, and for `tools/call` the tool (`tools/call:search`). */
export function statsKey(message: McpMessage): string {
  const method = message.method ?? 'response';
  return method === 'tools/call' && message.name !== undefined ? `tools/call:${message.name}` : method;
}

/** The body of a JSON-RPC error answer made by mcgravity itself (no request id is known). */
export function jsonRpcError(code: number, message: string, id: string | number | null = null): string {
  return JSON.stringify({ jsonrpc: '2.0', id, error: { code, message } });
}

/** The JSON-RPC error code the SDK's servers use for an unknown session. */
export const SESSION_NOT_FOUND = -32001;
