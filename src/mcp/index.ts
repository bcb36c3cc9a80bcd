/**
 * `mcgravity/mcp`: MCP helpers. `createMcpFetch` balances the calls of the MCP SDK's client across a
 * cluster of replicas and keeps every session on its own; the proxy's `sessionAffinity: 'mcp'` does
 * the same for any MCP client, in front of the replicas.
 */
export {
  createMcpFetch,
  type McpFetch,
  type McpFetchEvents,
  type McpFetchOptions,
  type McpFetchStats,
  type McpMethodStats,
} from './createMcpFetch.js';
export {
  isSafeMethod,
  METHOD_HEADER,
  NAME_HEADER,
  PROTOCOL_VERSION_HEADER,
  SESSION_HEADER,
} from './protocol.js';
export type { RpcOutcome } from './watchResponse.js';
