import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { type Cluster, type ClusterOptions, createCluster } from '../../src/cluster/Cluster.js';
import { parseMessages } from '../../src/mcp/protocol.js';
import { createProxy, type ProxyOptions } from '../../src/proxy/createProxy.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import {
  connectClient,
  expectKilledSessionsReinitialise,
  gate,
  type McpReplica,
  startMcpReplica,
  whoami,
} from '../helpers/mcp.js';

const defer = cleanupAfterEach({ ignoreErrors: true });

async function replicas(names: string[], mode: 'stateful' | 'stateless' = 'stateful'): Promise<McpReplica[]> {
  const made = await Promise.all(names.map((name) => startMcpReplica(name, mode)));
  for (const replica of made) defer(() => replica.close());
  return made;
}

function cluster(list: McpReplica[], options: Partial<ClusterOptions> = {}): Cluster {
  const made = createCluster({
    backends: list.map((replica) => ({ url: replica.url, id: replica.name })),
    health: false,
    balancer: 'round-robin',
    ...options,
  });
  defer(() => made.close({ timeoutMs: 500 }));
  return made;
}

async function start(options: ProxyOptions): Promise<{ url: string; proxy: ReturnType<typeof createProxy> }> {
  const proxy = createProxy(options);
  const server = await proxy.listen(0);
  defer(() => proxy.close({ timeoutMs: 200 }));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, proxy };
}

type Fetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** A fetch that sends each request to the next of `origins` in turn, keeping the path. */
function alternating(origins: string[], seen: string[] = []): Fetch {
  let next = 0;
  return (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const origin = origins[next++ % origins.length] as string;
    seen.push(origin);
    return fetch(origin + url.pathname + url.search, init);
  };
}

async function connect(url: string, fetchImpl?: Fetch) {
  const connected = await connectClient(`${url}/mcp`, fetchImpl);
  defer(() => connected.client.close());
  return connected;
}

describe("createProxy with sessionAffinity: 'mcp'", () => {
  it('routes each session to one replica through two stateless proxies that share a secret', async () => {
    const three = await replicas(['a', 'b', 'c']);
    const c = cluster(three);
    const options: ProxyOptions = {
      cluster: c,
      sessionAffinity: 'mcp',
      affinitySecret: 'a secret both proxies share',
    };
    const one = await start(options);
    const two = await start(options);
    const perSession = new Map<string, Set<string>>();
    const sent: string[] = [];
    const runSession = async () => {
      const { client, transport } = await connect(one.url, alternating([one.url, two.url], sent));
      await client.listTools();
      const seen = new Set<string>();
      for (let i = 0; i < 20; i++) seen.add(await whoami(client, i));
      perSession.set(transport.sessionId as string, seen);
    };
    // 50 sessions, 10 at a time: each initialises, lists tools and calls a tool 20 times.
    for (let batch = 0; batch < 5; batch++) await Promise.all(Array.from({ length: 10 }, runSession));
    expect(perSession.size).toBe(50);
    expect(new Set(sent)).toEqual(new Set([one.url, two.url]));
    const owners = new Map<string, number>();
    for (const [sessionId, seen] of perSession) {
      expect(seen.size).toBe(1);
      const owner = [...seen][0] as string;
      owners.set(owner, (owners.get(owner) ?? 0) + 1);
      // The client sees the replica's session id behind an opaque token, never the replica's address.
      const [token, inner] = [
        sessionId.slice(0, sessionId.indexOf('.')),
        sessionId.slice(sessionId.indexOf('.') + 1),
      ];
      expect(token).toMatch(/^[A-Za-z0-9_-]{16}$/);
      expect(three.find((r) => r.name === owner)?.sessions.has(inner)).toBe(true);
      // The token is an HMAC, not an encoding of the endpoint: neither its port nor its id shows.
      for (const replica of three) {
        expect(token).not.toContain(String(replica.port));
        expect(Buffer.from(token, 'base64url').toString('latin1')).not.toContain(String(replica.port));
      }
    }
    expect([...owners.keys()].sort()).toEqual(['a', 'b', 'c']);
    for (const count of owners.values()) expect(count).toBeGreaterThanOrEqual(10);
    const counted = one.proxy.mcpSessions()[c.name] ?? {};
    expect(Object.values(counted).reduce((sum, n) => sum + n, 0)).toBe(50);
  });

  it('answers 404 for a session id it cannot route, without reaching a replica', async () => {
    const [a] = await replicas(['a']);
    const { url } = await start({ cluster: cluster([a as McpReplica]), sessionAffinity: 'mcp' });
    for (const sessionId of ['no-token', 'AAAAAAAAAAAAAAAA.forged', (a as McpReplica).name]) {
      const response = await fetch(`${url}/mcp`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'mcp-session-id': sessionId },
        body: '{"jsonrpc":"2.0","id":1,"method":"ping"}',
      });
      expect(response.status).toBe(404);
      // The JSON-RPC error MCP clients understand, with the proxy's own code in its data.
      expect(await response.json()).toMatchObject({
        jsonrpc: '2.0',
        id: null,
        error: { code: -32001, message: 'Session not found', data: { code: 'ESESSIONGONE' } },
      });
    }
    expect((a as McpReplica).requests).toHaveLength(0);
  });

  it('in table mode, keeps session ids as they are and routes them by its table', async () => {
    const two = await replicas(['a', 'b']);
    const { url, proxy } = await start({
      cluster: cluster(two),
      sessionAffinity: { mcp: { mode: 'table', maxSessions: 100, sessionIdleMs: '10m' } },
    });
    const sessions = await Promise.all(Array.from({ length: 4 }, () => connect(url)));
    for (const { client, transport } of sessions) {
      const owner = await whoami(client);
      expect(two.find((r) => r.name === owner)?.sessions.has(transport.sessionId as string)).toBe(true);
      for (let i = 0; i < 5; i++) expect(await whoami(client)).toBe(owner);
    }
    const counts = Object.values(proxy.mcpSessions()).flatMap((byEndpoint) => Object.values(byEndpoint));
    expect(counts.reduce((sum, n) => sum + n, 0)).toBe(4);
    await sessions[0]?.transport.terminateSession();
    const after = Object.values(proxy.mcpSessions()).flatMap((byEndpoint) => Object.values(byEndpoint));
    expect(after.reduce((sum, n) => sum + n, 0)).toBe(3);
  });

  it('streams progress notifications through the proxy while the tool runs', async () => {
    const [a] = await replicas(['a']);
    const { url } = await start({ cluster: cluster([a as McpReplica]), sessionAffinity: 'mcp' });
    const { client } = await connect(url);
    const opened = gate('progress-through-proxy');
    const progress: number[] = [];
    const result = await client.callTool(
      { name: 'count', arguments: { steps: 3, gate: 'progress-through-proxy' } },
      undefined,
      {
        onprogress: (event) => {
          progress.push(event.progress);
          // The tool waits after its first step until this progress event has crossed the proxy.
          if (event.progress === 1) opened.open();
        },
      },
    );
    expect(progress).toEqual([1, 2, 3]);
    expect(JSON.parse((result.content as { text: string }[])[0]?.text ?? '{}')).toEqual({
      replica: 'a',
      steps: 3,
    });
  });

  it("sends a killed replica's sessions 404 so they re-initialise; other sessions see no error", async () => {
    const two = await replicas(['a', 'b']);
    const { url } = await start({ cluster: cluster(two), sessionAffinity: 'mcp' });
    const sessions = await Promise.all(Array.from({ length: 4 }, () => connect(url)));
    const owners = await Promise.all(sessions.map(({ client }) => whoami(client)));
    expect(new Set(owners)).toEqual(new Set(['a', 'b']));
    await two[0]?.close();
    await expectKilledSessionsReinitialise(sessions, owners, 'a', 'b', () => connect(url));
  });

  it('keeps a draining replica’s sessions and sends new sessions elsewhere', async () => {
    const two = await replicas(['a', 'b']);
    const c = cluster(two);
    const { url, proxy } = await start({ cluster: c, sessionAffinity: 'mcp' });
    const old = await connect(url);
    const owner = await whoami(old.client);
    void c.drain(owner, { timeoutMs: 60_000 });
    for (let i = 0; i < 4; i++) {
      const fresh = await connect(url);
      expect(await whoami(fresh.client)).not.toBe(owner);
    }
    expect(await whoami(old.client)).toBe(owner);
    expect(proxy.mcpSessions()[c.name]?.[owner]).toBe(1);
  });

  it('routes by Mcp-Method and Mcp-Name headers (revision 2026-07-28 clients) to a route per tool', async () => {
    const tools = await replicas(['tool-1', 'tool-2'], 'stateless');
    const rest = await replicas(['rest'], 'stateless');
    const { url } = await start({
      routes: [
        { match: { mcpMethod: 'tools/call', mcpName: 'whoami' }, cluster: cluster(tools) },
        { cluster: cluster(rest as McpReplica[]) },
      ],
      sessionAffinity: 'mcp',
    });
    // A client of the new revision names the method and tool in headers; this one adds them to the SDK's requests.
    const withHeaders: Fetch = (input, init) => {
      const headers = new Headers(init?.headers);
      const message = typeof init?.body === 'string' ? parseMessages(init.body)?.[0] : undefined;
      if (message?.method !== undefined) headers.set('mcp-method', message.method);
      if (message?.name !== undefined) headers.set('mcp-name', message.name);
      return fetch(input, { ...init, headers });
    };
    const { client } = await connect(url, withHeaders);
    const served = new Set<string>();
    for (let i = 0; i < 6; i++) served.add(await whoami(client, i));
    expect(served).toEqual(new Set(['tool-1', 'tool-2']));
    const counted = await client.callTool({ name: 'count', arguments: { steps: 1 } });
    expect(JSON.parse((counted.content as { text: string }[])[0]?.text ?? '{}').replica).toBe('rest');
  });

  it('refuses bad MCP affinity options, naming them', () => {
    const c = createCluster({ backends: ['http://127.0.0.1:1'], health: false });
    defer(() => c.close());
    const bad: [unknown, RegExp][] = [
      [{ mcp: { mode: 'sticky' } }, /sessionAffinity\.mcp\.mode/],
      [{ mcp: { maxSessions: 0 } }, /sessionAffinity\.mcp\.maxSessions/],
      [{ mcp: { sessionIdleMs: 'later' } }, /sessionAffinity\.mcp\.sessionIdleMs/],
      [{ mcp: { idempotentTools: 'x' } }, /sessionAffinity\.mcp\.idempotentTools/],
      [{ mcp: { table: true } }, /table/],
      ['mcp-ish', /sessionAffinity must be/],
    ];
    for (const [sessionAffinity, message] of bad) {
      expect(() => createProxy({ cluster: c, sessionAffinity } as ProxyOptions)).toThrow(message);
    }
  });
});
