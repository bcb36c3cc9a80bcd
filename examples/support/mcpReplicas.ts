/**
 * Stand-ins for your MCP servers in the MCP examples: replicas of one MCP server (the official SDK's
 * `McpServer` over Streamable HTTP, one transport per session) on loopback ports. Each has a `whoami`
 * tool that answers with the replica's name, so you can see where every call went.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';

export interface Replica {
  name: string;
  url: string;
  /** Stops the replica and cuts its connections, as a crash would. */
  stop(): Promise<void>;
}

export async function startReplica(name: string): Promise<Replica> {
  const sessions = new Map<string, StreamableHTTPServerTransport>();
  const server = http.createServer(async (req, res) => {
    const id = req.headers['mcp-session-id'];
    let transport = typeof id === 'string' ? sessions.get(id) : undefined;
    if (transport === undefined && id !== undefined) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"jsonrpc":"2.0","id":null,"error":{"code":-32001,"message":"Session not found"}}');
      return;
    }
    if (transport === undefined) {
      const created: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (sessionId) => {
          sessions.set(sessionId, created);
        },
      });
      created.onclose = () => sessions.delete(created.sessionId ?? '');
      const mcp = new McpServer({ name, version: '1.0.0' });
      mcp.registerTool('whoami', { description: 'Names the replica that answers' }, async () => ({
        content: [{ type: 'text', text: name }],
      }));
      await mcp.connect(created);
      transport = created;
    }
    await transport.handleRequest(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    name,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stop: async () => {
      for (const transport of sessions.values()) await transport.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The text of a `whoami` answer. */
export function textOf(result: Record<string, unknown>): string {
  return (result.content as { text: string }[] | undefined)?.[0]?.text ?? '';
}
