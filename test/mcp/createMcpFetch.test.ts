import type { StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { describe, expect, it } from 'vitest';
import { type Cluster, type ClusterOptions, createCluster } from '../../src/cluster/Cluster.js';
import { createMcpFetch, type McpFetchEvents } from '../../src/mcp/createMcpFetch.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import {
  connectClient,
  expectKilledSessionsReinitialise,
  type McpReplica,
  startMcpReplica,
  whoami,
} from '../helpers/mcp.js';
import { closedPort, resettingUpstream } from '../helpers/upstreams.js';

const defer = cleanupAfterEach({ ignoreErrors: true });

async function replicas(count: number, mode: 'stateful' | 'stateless' = 'stateful'): Promise<McpReplica[]> {
  const made = await Promise.all(
    Array.from({ length: count }, (_, i) => startMcpReplica(String.fromCharCode(97 + i), mode)),
  );
  for (const replica of made) defer(() => replica.close());
  return made;
}

function cluster(
  backends: NonNullable<ClusterOptions['backends']>,
  options: Partial<ClusterOptions> = {},
): Cluster {
  const made = createCluster({ backends, health: false, ...options });
  defer(() => made.close({ timeoutMs: 1000 }));
  return made;
}

/** Backends named after their replica, so endpoint ids and replica names agree. */
function named(list: McpReplica[]): { url: string; id: string }[] {
  return list.map((replica) => ({ url: replica.url, id: replica.name }));
}

const URL_PATH = 'http://mcp.invalid/mcp';

async function connect(fetch: ReturnType<typeof createMcpFetch>) {
  const connected = await connectClient(URL_PATH, fetch);
  defer(() => connected.client.close());
  return connected;
}

describe('createMcpFetch', () => {
  it('keeps every call of a session on its replica, and spreads 50 sessions over 3 replicas', async () => {
    const three = await replicas(3);
    const fetch = createMcpFetch(cluster(named(three), { balancer: 'round-robin' }));
    const opened: { sessionId: string; endpointId: string }[] = [];
    fetch.events.on('session:opened', (info) => opened.push(info));
    const perSession = new Map<string, Set<string>>();
    const runSession = async () => {
      const { client, transport } = await connect(fetch);
      const tools = await client.listTools();
      expect(tools.tools.map((tool) => tool.name)).toContain('whoami');
      const seen = new Set<string>();
      for (let i = 0; i < 20; i++) seen.add(await whoami(client, i));
      perSession.set(transport.sessionId as string, seen);
    };
    for (let batch = 0; batch < 5; batch++) await Promise.all(Array.from({ length: 10 }, runSession));

    expect(perSession.size).toBe(50);
    const sessionsPerReplica = new Map<string, number>();
    for (const [sessionId, seen] of perSession) {
      expect(seen.size).toBe(1); // one replica per session
      const replica = [...seen][0] as string;
      expect(opened.find((o) => o.sessionId === sessionId)?.endpointId).toBe(replica);
      expect(three.find((r) => r.name === replica)?.sessions.has(sessionId)).toBe(true);
      sessionsPerReplica.set(replica, (sessionsPerReplica.get(replica) ?? 0) + 1);
    }
    for (const replica of three) expect(sessionsPerReplica.get(replica.name) ?? 0).toBeGreaterThanOrEqual(10);
    const stats = fetch.stats();
    expect(stats.sessions).toBe(50);
    expect(stats.methods['tools/call:whoami']?.requests).toBe(1000);
    expect(stats.methods['tools/call:whoami']?.rpcErrors).toBe(0);
    expect(stats.methods['tools/list']?.requests).toBe(50);
    expect(stats.methods['tools/call:whoami']?.latency.count).toBe(1000);
  });

  it('answers 404 for sessions of a killed replica, which re-initialise on a live one; others see no error', async () => {
    const [a, b] = await replicas(2);
    const c = cluster(named([a as McpReplica, b as McpReplica]), { balancer: 'round-robin' });
    const fetch = createMcpFetch(c);
    const lost: Parameters<McpFetchEvents['session:lost']>[0][] = [];
    fetch.events.on('session:lost', (info) => lost.push(info));
    const sessions = await Promise.all(Array.from({ length: 6 }, () => connect(fetch)));
    const owners = await Promise.all(sessions.map(({ client }) => whoami(client)));
    expect(new Set(owners)).toEqual(new Set(['a', 'b']));

    await (a as McpReplica).close();
    await expectKilledSessionsReinitialise(sessions, owners, 'a', 'b', () => connect(fetch));
    const moved = owners.filter((owner) => owner === 'a').length;
    expect(lost).toHaveLength(moved);
    expect(lost.every((info) => info.endpointId === 'a' && info.action === 'not-found')).toBe(true);
    expect(lost[0]?.reason).toBe('refused');

    // A lost session is never sent to a replica that did not issue it: its id gets 404 at once.
    const stale = lost[0]?.sessionId as string;
    const before = (b as McpReplica).requests.length;
    const again = await fetch(URL_PATH, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-session-id': stale,
      },
      body: '{"jsonrpc":"2.0","id":9,"method":"ping"}',
    });
    expect(again.status).toBe(404);
    expect(await again.json()).toMatchObject({ error: { code: -32001 } });
    expect((b as McpReplica).requests.length).toBe(before);
  });

  it("with onOwnerGone 'reinitialize', moves a session to a live replica without the client noticing", async () => {
    const [a, b] = await replicas(2);
    const c = cluster(named([a as McpReplica, b as McpReplica]), { balancer: 'round-robin' });
    const fetch = createMcpFetch(c, { onOwnerGone: 'reinitialize' });
    const lost: Parameters<McpFetchEvents['session:lost']>[0][] = [];
    fetch.events.on('session:lost', (info) => lost.push(info));
    const first = await connect(fetch);
    const second = await connect(fetch);
    const owner = await whoami(first.client);
    const victim = owner === 'a' ? (a as McpReplica) : (b as McpReplica);
    const survivor = owner === 'a' ? 'b' : 'a';
    const sessionBefore = first.transport.sessionId;

    await victim.close();
    expect(await whoami(first.client)).toBe(survivor);
    expect(await whoami(first.client)).toBe(survivor);
    expect(first.transport.sessionId).toBe(sessionBefore); // the client kept its session id
    expect(await whoami(second.client)).toBe(survivor);
    expect(lost[0]).toMatchObject({ endpointId: owner, action: 'reinitialized', newEndpointId: survivor });
  });

  it('sends a removed replica’s sessions 404 at once, without a connection attempt', async () => {
    const [a, b] = await replicas(2);
    const c = cluster(named([a as McpReplica, b as McpReplica]), { balancer: 'round-robin' });
    const fetch = createMcpFetch(c);
    const reasons: string[] = [];
    fetch.events.on('session:lost', (info) => reasons.push(info.reason));
    const one = await connect(fetch);
    const owner = await whoami(one.client);
    const callsBefore = (owner === 'a' ? a : b)?.calls.count;
    await c.remove(owner, { timeoutMs: 100 });
    const failure = await whoami(one.client).catch((error: unknown) => error);
    expect((failure as StreamableHTTPError).code).toBe(404);
    expect((owner === 'a' ? a : b)?.calls.count).toBe(callsBefore);
    expect(reasons).toEqual(['removed']);
    expect(fetch.stats().sessions).toBe(0);
  });

  it('keeps serving a draining replica’s sessions and opens new ones elsewhere', async () => {
    const [a, b] = await replicas(2);
    const c = cluster(named([a as McpReplica, b as McpReplica]), { balancer: 'round-robin' });
    const fetch = createMcpFetch(c);
    const old = await connect(fetch);
    const owner = await whoami(old.client);
    void c.drain(owner, { timeoutMs: 60_000 });
    for (let i = 0; i < 5; i++) {
      const fresh = await connect(fetch);
      expect(await whoami(fresh.client)).not.toBe(owner);
    }
    expect(await whoami(old.client)).toBe(owner);
    expect(fetch.stats().sessionsByEndpoint[owner]).toBe(1);
  });

  it('ends a session with DELETE on its own replica', async () => {
    const [a, b] = await replicas(2);
    const fetch = createMcpFetch(cluster(named([a as McpReplica, b as McpReplica])));
    const closed: string[] = [];
    fetch.events.on('session:closed', (info) => closed.push(info.endpointId));
    const { client, transport } = await connect(fetch);
    const owner = await whoami(client);
    await transport.terminateSession();
    expect(closed).toEqual([owner]);
    expect(fetch.stats().sessions).toBe(0);
  });

  it('spreads calls to stateless servers over every replica, retrying a refused connection', async () => {
    const three = await replicas(3, 'stateless');
    const refused = `http://127.0.0.1:${await closedPort()}`;
    const c = cluster([...named(three), { url: refused, id: 'dead' }], {
      balancer: 'round-robin',
      outlierDetection: false,
      circuitBreaker: false,
    });
    const fetch = createMcpFetch(c);
    const { client, transport } = await connect(fetch);
    expect(transport.sessionId).toBeUndefined();
    const seen = new Map<string, number>();
    for (let i = 0; i < 30; i++) {
      const replica = await whoami(client, i);
      seen.set(replica, (seen.get(replica) ?? 0) + 1);
    }
    expect([...seen.keys()].sort()).toEqual(['a', 'b', 'c']);
    for (const count of seen.values()) expect(count).toBeGreaterThanOrEqual(8);
    expect(c.stats().requeues).toBeGreaterThan(0); // a refused connection is requeued, not retried
    expect(fetch.stats().sessions).toBe(0);
  });

  it('retries a tools/call after a reset only when the tool is marked idempotent', async () => {
    const [a] = await replicas(1, 'stateless');
    const reset = await resettingUpstream();
    defer(() => reset.close());
    const backends = [
      { url: reset.url, id: 'reset' },
      { url: (a as McpReplica).url, id: 'a' },
    ];
    const options = {
      balancer: 'round-robin' as const,
      outlierDetection: false as const,
      circuitBreaker: false as const,
    };
    // The client's initialize and list are safe and retried; then round robin sends the call to the resetting replica.
    const plain = createMcpFetch(cluster(backends, options));
    const one = await connect(plain);
    const outcomes: string[] = [];
    for (let i = 0; i < 4; i++) {
      outcomes.push(
        await whoami(one.client).then(
          (replica) => replica,
          () => 'failed',
        ),
      );
    }
    expect(outcomes).toContain('failed');

    const marked = createMcpFetch(cluster(backends, options), { idempotentTools: ['whoami'] });
    const two = await connect(marked);
    for (let i = 0; i < 4; i++) expect(await whoami(two.client)).toBe('a');
  });

  it('counts tool errors per tool, and a per-tool breaker steers that tool away from the failing replica', async () => {
    const [a] = await replicas(1, 'stateless');
    const c = cluster(named([a as McpReplica]));
    const fetch = createMcpFetch(c, { toolBreaker: { failureThreshold: 2, openMs: 60_000 } });
    const states: string[] = [];
    fetch.events.on('tool:circuit', (info) => states.push(`${info.endpointId}/${info.tool}:${info.state}`));
    const { client } = await connect(fetch);
    for (let i = 0; i < 2; i++) {
      const result = await client.callTool({ name: 'broken', arguments: {} });
      expect(result.isError).toBe(true);
    }
    expect(states).toEqual(['a/broken:open']);
    // The only replica is open for `broken`: the cluster has no other, so the call is refused…
    await expect(client.callTool({ name: 'broken', arguments: {} })).rejects.toThrow();
    // …while other tools on the same replica work on.
    expect(await whoami(client)).toBe('a');
    const stats = fetch.stats();
    expect(stats.methods['tools/call:broken']).toMatchObject({ requests: 3, rpcErrors: 2 });
    expect(stats.openToolCircuits).toEqual([{ endpointId: 'a', tool: 'broken', state: 'open' }]);
    expect(c.stats().endpoints[0]?.eligible).toBe(true);
  });

  it('refuses bad options, naming them', () => {
    const c = cluster(['http://127.0.0.1:1']);
    expect(() => createMcpFetch({} as Cluster)).toThrow(/createMcpFetch needs a Cluster/);
    expect(() => createMcpFetch(c, { onOwnerGone: 'retry' as 'not-found' })).toThrow(/onOwnerGone/);
    expect(() => createMcpFetch(c, { idempotentTools: 'x' as unknown as string[] })).toThrow(
      /idempotentTools/,
    );
    expect(() => createMcpFetch(c, { toolBreaker: { failureThreshold: -1 } })).toThrow(/failureThreshold/);
    expect(() => createMcpFetch(c, { maxSessions: 0 })).toThrow(/maxSessions/);
    expect(() => createMcpFetch(c, { sessionIdleMs: 'soon' as never })).toThrow(/sessionIdleMs/);
    expect(() => createMcpFetch(c, { nope: 1 } as never)).toThrow(/nope/);
  });
});
