import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { createCluster } from '../../src/cluster/Cluster.js';
import type { ClusterStreamHead } from '../../src/cluster/ResponseRelay.js';
import { McpSessionRouter } from '../../src/mcp/router.js';
import { Affinity } from '../../src/proxy/affinity.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { ManualClock } from '../helpers/clock.js';

const defer = cleanupAfterEach();

function setup(mode: 'stateless' | 'table') {
  const cluster = createCluster({
    name: 'mcp',
    backends: [
      { url: 'http://127.0.0.1:1', id: 'a' },
      { url: 'http://127.0.0.1:2', id: 'b' },
    ],
  });
  defer(() => cluster.close({ timeoutMs: 10 }));
  const affinity = new Affinity(undefined, 'a shared secret of enough length', false);
  const router = new McpSessionRouter({ mode }, new ManualClock(1_000), affinity);
  const request = (session?: string, method = 'POST') =>
    ({
      method,
      headers: session === undefined ? {} : { 'mcp-session-id': session },
    }) as unknown as IncomingMessage;
  const answer = (endpoint: string, statusCode: number, session?: string): ClusterStreamHead => {
    const headers: Record<string, string> = session === undefined ? {} : { 'mcp-session-id': session };
    return {
      statusCode,
      headers,
      rawHeaders: session === undefined ? [] : [Buffer.from('Mcp-Session-Id'), Buffer.from(session)],
      header: (name) => headers[name.toLowerCase()],
      endpoint: cluster.endpoints.find((e) => e.id === endpoint) as ClusterStreamHead['endpoint'],
      bytesRelayed: 0,
      attempt: 1,
    };
  };
  return { cluster, router, request, answer };
}

describe('McpSessionRouter', () => {
  it('stateless: prefixes a new session with its owner token, routes by it and strips it upstream', () => {
    const { cluster, router, request, answer } = setup('stateless');
    expect(router.route(cluster, request(), {})).toBeUndefined(); // no session: balanced
    const head = answer('b', 200, 'server-42');
    router.learn(cluster, request(), head, undefined);
    const clientId = head.headers['mcp-session-id'] as string;
    expect(clientId).toMatch(/^[\w-]{16}\.server-42$/);
    const headers: Record<string, string> = {};
    expect(router.route(cluster, request(clientId), headers)).toEqual({ clientId, endpointId: 'b' });
    expect(headers['mcp-session-id']).toBe('server-42');
    expect(router.route(cluster, request('forged.server-42'), {})).toBeNull(); // unknown token: 404
    expect(router.sessions()).toEqual({ mcp: { a: 0, b: 1 } });
  });

  it('table: remembers a session until DELETE or a 404 ends it', () => {
    const { cluster, router, request, answer } = setup('table');
    router.learn(cluster, request(), answer('a', 200, 's1'), undefined);
    const session = router.route(cluster, request('s1'), {});
    expect(session).toEqual({ clientId: 's1', endpointId: 'a' });
    router.learn(cluster, request('s1', 'DELETE'), answer('a', 204), session ?? undefined);
    expect(router.route(cluster, request('s1'), {})).toBeNull();
  });

  it('repeats only bodies whose every message is safe', () => {
    const { router } = setup('stateless');
    expect(router.repeatable(Buffer.from('{"jsonrpc":"2.0","id":1,"method":"tools/list"}'))).toBe(true);
    expect(
      router.repeatable(
        Buffer.from('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"pay"}}'),
      ),
    ).toBe(false);
    expect(
      () =>
        new McpSessionRouter(
          { mode: 'both' as never },
          new ManualClock(),
          new Affinity(undefined, undefined, false),
        ),
    ).toThrow(/sessionAffinity\.mcp\.mode must be 'stateless' or 'table'/);
  });
});
