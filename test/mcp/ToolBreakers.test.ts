/**
 * Per-replica, per-tool breakers of createMcpFetch: permits are taken before a call is sent, so a
 * half-open breaker admits exactly `halfOpenMaxRequests` probes however many calls arrive at once.
 */
import { describe, expect, it } from 'vitest';
import { createCluster } from '../../src/cluster/Cluster.js';
import { createMcpFetch } from '../../src/mcp/createMcpFetch.js';
import { until } from '../helpers/async.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { ManualClock } from '../helpers/clock.js';
import { startUpstream } from '../helpers/upstreams.js';

const defer = cleanupAfterEach({ ignoreErrors: true });

const call = (id: number) =>
  JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'flaky', arguments: {} } });

describe('per-tool breakers', () => {
  it('admit exactly halfOpenMaxRequests concurrent probes of a tool on a replica', async () => {
    const clock = new ManualClock();
    let answered = 0;
    // A stateless MCP server whose `flaky` tool fails once, then never answers (probes stay in flight).
    const replica = await startUpstream((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => {
        body += chunk.toString();
      });
      req.on('end', () => {
        if (answered++ > 0) return;
        const { id } = JSON.parse(body) as { id: number };
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ jsonrpc: '2.0', id, result: { isError: true, content: [] } }));
      });
    });
    defer(() => replica.close());
    const cluster = createCluster({ backends: [{ url: replica.url, id: 'a' }], retry: false, clock });
    defer(() => cluster.close({ timeoutMs: 200 }));
    const fetch = createMcpFetch(cluster, {
      toolBreaker: { failureThreshold: 1, openMs: 100, halfOpenMaxRequests: 1 },
      clock,
    });
    const send = (id: number) =>
      fetch('http://mcp.invalid/mcp', {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: call(id),
      });
    const first = await send(1);
    await first.text();
    expect(fetch.stats().openToolCircuits).toEqual([{ endpointId: 'a', tool: 'flaky', state: 'open' }]);
    clock.advance(100);
    const outcomes: string[] = [];
    for (let id = 2; id <= 6; id++) {
      send(id).then(
        () => outcomes.push('sent'),
        (error: { code?: string }) => outcomes.push(error.code ?? 'error'),
      );
    }
    await until(() => outcomes.length === 4 && replica.requests.length === 2);
    expect(outcomes).toEqual(Array(4).fill('ENOUPSTREAM')); // the probe slot was taken
    expect(replica.requests).toHaveLength(2); // the first call, then exactly one probe
  });
});
