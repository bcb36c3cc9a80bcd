/**
 * The demo's backends: three real HTTP servers on 127.0.0.1, each answering plain requests and
 * speaking MCP's Streamable HTTP transport at `/mcp` (JSON answers; `initialize` issues a session
 * id, `tools/list` and `tools/call` of `whoami` need it). One is fast, one is slow, and one fails on
 * a schedule (answers 503 for a while, then recovers), so that the proxy has something to do.
 */
import { randomUUID } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** How a backend behaves. */
export interface BackendBehaviour {
  readonly name: string;
  /** Time taken to answer, in ms. */
  readonly delayMs: number;
  /** When set: fails (503) for `failMs` out of every `periodMs`, starting after `healthyMs`. */
  readonly failing?: { readonly healthyMs: number; readonly failMs: number };
}

/** A running demo backend. */
export interface DemoBackend {
  readonly name: string;
  readonly port: number;
  /** Whether it is in a failing spell now. */
  failing(): boolean;
  close(): Promise<void>;
}

const PROTOCOL_VERSION = '2025-06-18';

function reply(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(text);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > 64 * 1024) req.destroy(new Error('body too large'));
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** Answers one MCP JSON-RPC message (a request gets a result or an error; a notification 202). */
function mcp(name: string, sessions: Set<string>, req: IncomingMessage, res: ServerResponse, text: string) {
  let message: { id?: unknown; method?: unknown; params?: { name?: unknown } };
  try {
    message = JSON.parse(text) as typeof message;
  } catch {
    return reply(res, 400, { jsonrpc: '2.0', id: null, error: { code: -32700, message: 'parse error' } });
  }
  const id = message.id ?? null;
  if (message.method === 'initialize') {
    const session = randomUUID();
    sessions.add(session);
    return reply(
      res,
      200,
      {
        jsonrpc: '2.0',
        id,
        result: {
          protocolVersion: PROTOCOL_VERSION,
          capabilities: { tools: {} },
          serverInfo: { name: `demo-${name}`, version: '1.0.0' },
        },
      },
      { 'mcp-session-id': session },
    );
  }
  const session = req.headers['mcp-session-id'];
  if (typeof session !== 'string' || !sessions.has(session))
    return reply(res, 404, { jsonrpc: '2.0', id, error: { code: -32001, message: 'session not found' } });
  if (message.id === undefined) return void res.writeHead(202).end();
  if (message.method === 'tools/list')
    return reply(res, 200, {
      jsonrpc: '2.0',
      id,
      result: {
        tools: [{ name: 'whoami', description: 'Names the replica', inputSchema: { type: 'object' } }],
      },
    });
  if (message.method === 'tools/call' && message.params?.name === 'whoami')
    return reply(res, 200, { jsonrpc: '2.0', id, result: { content: [{ type: 'text', text: name }] } });
  return reply(res, 200, { jsonrpc: '2.0', id, error: { code: -32601, message: 'method not found' } });
}

/** Starts one backend on 127.0.0.1 and an ephemeral port. */
export async function startDemoBackend(behaviour: BackendBehaviour, now: () => number): Promise<DemoBackend> {
  const started = now();
  const sessions = new Set<string>();
  const failing = () => {
    const spell = behaviour.failing;
    if (spell === undefined) return false;
    const period = spell.healthyMs + spell.failMs;
    return (now() - started) % period >= spell.healthyMs;
  };
  const server = http.createServer(async (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/health')
      return reply(res, failing() ? 503 : 200, { status: failing() ? 'failing' : 'ok' });
    const body = await readBody(req).catch(() => '');
    setTimeout(() => {
      if (res.destroyed) return;
      if (failing())
        return reply(
          res,
          503,
          { error: `${behaviour.name} is failing on schedule` },
          { connection: 'close' },
        );
      if (path === '/mcp' && req.method === 'POST') return mcp(behaviour.name, sessions, req, res, body);
      if (path === '/mcp' && req.method === 'DELETE') {
        const session = req.headers['mcp-session-id'];
        if (typeof session === 'string') sessions.delete(session);
        return void res.writeHead(204).end();
      }
      reply(res, 200, { served: behaviour.name, path: req.url });
    }, behaviour.delayMs);
  });
  server.keepAliveTimeout = 10_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    name: behaviour.name,
    port: (server.address() as AddressInfo).port,
    failing,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
