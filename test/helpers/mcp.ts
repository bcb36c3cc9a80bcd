/**
 * Real MCP servers for tests: replicas of the SDK's `McpServer` behind its
 * `StreamableHTTPServerTransport` on loopback upstreams, stateful (a session per client, one
 * transport each) or stateless (a fresh server per request). Every replica's tools say which replica
 * served them, so a test can tell where each call went.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import {
  StreamableHTTPClientTransport,
  StreamableHTTPError,
} from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { expect } from 'vitest';
import { z } from 'zod';
import { startUpstream, type Upstream } from './upstreams.js';

/** A running replica. */
export interface McpReplica extends Upstream {
  readonly name: string;
  /** Sessions this replica has opened (stateful replicas). */
  readonly sessions: Set<string>;
  /** Tool calls served. */
  readonly calls: { count: number };
}

/** Makes the McpServer of one replica, with the tools the tests call. */
function makeServer(name: string, calls: { count: number }): McpServer {
  const server = new McpServer({ name: `replica-${name}`, version: '1.0.0' });
  server.registerTool(
    'whoami',
    { description: 'Says which replica answered.', inputSchema: { n: z.number().optional() } },
    async ({ n }) => {
      calls.count++;
      return { content: [{ type: 'text', text: JSON.stringify({ replica: name, n: n ?? null }) }] };
    },
  );
  server.registerTool(
    'count',
    {
      description: 'Counts to `steps`, reporting progress after each step.',
      inputSchema: { steps: z.number(), gate: z.string().optional() },
    },
    async ({ steps, gate }, extra) => {
      calls.count++;
      const token = extra._meta?.progressToken;
      for (let step = 1; step <= steps; step++) {
        if (token !== undefined) {
          await extra.sendNotification({
            method: 'notifications/progress',
            params: { progressToken: token, progress: step, total: steps },
          });
        }
        // A gated step waits until the test opens the gate: proof that progress arrived mid-call.
        if (gate !== undefined && step === 1) await gates.get(gate)?.promise;
      }
      return { content: [{ type: 'text', text: JSON.stringify({ replica: name, steps }) }] };
    },
  );
  server.registerTool('broken', { description: 'Always fails.' }, async () => {
    calls.count++;
    return { isError: true, content: [{ type: 'text', text: `broken on ${name}` }] };
  });
  return server;
}

const gates = new Map<string, { promise: Promise<void>; open: () => void }>();

/** A gate a `count` call waits at after its first progress step, until `open()`. */
export function gate(id: string): { open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  gates.set(id, { promise, open });
  return { open };
}

/** Starts a replica named `name`. */
export async function startMcpReplica(
  name: string,
  mode: 'stateful' | 'stateless' = 'stateful',
  options: { /** Answers as one JSON body instead of an SSE stream. */ json?: boolean } = {},
): Promise<McpReplica> {
  const sessions = new Set<string>();
  const transports = new Map<string, StreamableHTTPServerTransport>();
  const calls = { count: 0 };
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (mode === 'stateless') {
      const server = makeServer(name, calls);
      const transport = new StreamableHTTPServerTransport({});
      res.on('close', () => {
        void transport.close();
        void server.close();
      });
      await server.connect(transport);
      await transport.handleRequest(req, res);
      return;
    }
    const sessionId = req.headers['mcp-session-id'];
    const known = typeof sessionId === 'string' ? transports.get(sessionId) : undefined;
    if (known !== undefined) {
      await known.handleRequest(req, res);
      return;
    }
    if (sessionId !== undefined) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32001, message: 'Session not found' } }),
      );
      return;
    }
    const transport = new StreamableHTTPServerTransport({
      enableJsonResponse: options.json === true,
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        transports.set(id, transport);
        sessions.add(id);
      },
    });
    transport.onclose = () => {
      if (transport.sessionId !== undefined) transports.delete(transport.sessionId);
    };
    await makeServer(name, calls).connect(transport);
    await transport.handleRequest(req, res);
  };
  const upstream = await startUpstream((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  const close = upstream.close;
  return Object.assign(upstream, {
    name,
    sessions,
    calls,
    close: async () => {
      for (const transport of transports.values()) await transport.close().catch(() => {});
      await close();
    },
  });
}

/** Connects an SDK client through `fetch` (ours, or the global one) to `url`. */
export async function connectClient(
  url: string,
  fetch?: (input: string | URL | Request, init?: RequestInit) => Promise<Response>,
): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const transport = new StreamableHTTPClientTransport(new URL(url), fetch === undefined ? {} : { fetch });
  const client = new Client({ name: 'test-client', version: '1.0.0' });
  await client.connect(transport);
  return { client, transport };
}

/** Calls `whoami` and returns the replica that answered. */
export async function whoami(client: Client, n?: number): Promise<string> {
  const result = await client.callTool({ name: 'whoami', arguments: n === undefined ? {} : { n } });
  const content = result.content as { type: string; text: string }[];
  return (JSON.parse(content[0]?.text ?? '{}') as { replica: string }).replica;
}

/**
 * After replica `killed` died: sessions it owned get 404 from their next call, and a new session
 * (made by `reconnect`, as an application does on 404) lands on `survivor`; the other sessions go on
 * on `survivor` without an error.
 */
export async function expectKilledSessionsReinitialise(
  sessions: readonly { client: Client }[],
  owners: readonly string[],
  killed: string,
  survivor: string,
  reconnect: () => Promise<{ client: Client }>,
): Promise<void> {
  for (const [i, { client }] of sessions.entries()) {
    if (owners[i] !== killed) {
      expect(await whoami(client)).toBe(survivor);
      continue;
    }
    const failure = await whoami(client).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(StreamableHTTPError);
    expect((failure as StreamableHTTPError).code).toBe(404);
    const again = await reconnect();
    expect(await whoami(again.client)).toBe(survivor);
  }
}
