import { describe, expect, it } from 'vitest';
import {
  idempotentToolsFrom,
  isRepeatable,
  isSafeMethod,
  jsonRpcError,
  type McpMessage,
  parseMessages,
  statsKey,
} from '../../src/mcp/protocol.js';

const msg = (fields: Partial<McpMessage>): McpMessage => ({
  method: undefined,
  id: undefined,
  name: undefined,
  ...fields,
});

describe('MCP protocol helpers', () => {
  it('parses single messages and batches, and refuses what is not JSON-RPC', () => {
    expect(parseMessages('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}')).toEqual([
      { method: 'tools/call', id: 1, name: 'x' },
    ]);
    expect(parseMessages('[{"method":"ping","id":"a"},{"method":"notifications/initialized"}]')).toHaveLength(
      2,
    );
    expect(parseMessages('not json')).toBeUndefined();
    expect(parseMessages('[1]')).toBeUndefined();
  });

  it.each([
    ['initialize', true],
    ['ping', true],
    ['tools/list', true],
    ['resources/read', true],
    ['tools/call', false],
    ['sampling/createMessage', false],
  ])('%s is safe: %s', (method, safe) => {
    expect(isSafeMethod(method)).toBe(safe);
  });

  it('repeats notifications, safe methods and idempotent tools only', () => {
    const tools = idempotentToolsFrom(['search'], 'idempotentTools');
    expect(isRepeatable(msg({ method: 'notifications/cancelled' }), tools)).toBe(true);
    expect(isRepeatable(msg({ method: 'tools/call', name: 'search' }), tools)).toBe(true);
    expect(isRepeatable(msg({ method: 'tools/call', name: 'pay' }), tools)).toBe(false);
    expect(isRepeatable(msg({ id: 3 }), tools)).toBe(false); // an answer to the server
    expect(idempotentToolsFrom((tool) => tool.startsWith('get'), 'x')('getUser')).toBe(true);
    expect(() => idempotentToolsFrom('search' as never, 'idempotentTools')).toThrow(
      /idempotentTools must be an array/,
    );
  });

  it('keys statistics by method, and tool calls by tool', () => {
    expect(statsKey(msg({ method: 'tools/call', name: 'search' }))).toBe('tools/call:search');
    expect(statsKey(msg({ method: 'ping' }))).toBe('ping');
    expect(statsKey(msg({ id: 1 }))).toBe('response');
    expect(JSON.parse(jsonRpcError(-32001, 'Session not found'))).toEqual({
      jsonrpc: '2.0',
      id: null,
      error: { code: -32001, message: 'Session not found' },
    });
  });
});
