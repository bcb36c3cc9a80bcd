import diagnostics from 'node:diagnostics_channel';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createCluster } from '../../src/cluster/Cluster.js';
import type {
  AttemptEndMessage,
  AttemptStartMessage,
  EndpointMessage,
  ProxyRequestEndMessage,
  ProxyRequestStartMessage,
  RetryMessage,
} from '../../src/observe/diagnostics.js';
import { createProxy } from '../../src/proxy/createProxy.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { closedPort, startUpstream } from '../helpers/upstreams.js';

const defer = cleanupAfterEach();
const subscriptions: [string, (message: unknown) => void][] = [];

function listen<T>(name: string): T[] {
  const seen: T[] = [];
  const listener = (message: unknown) => seen.push(message as T);
  diagnostics.subscribe(name, listener);
  subscriptions.push([name, listener]);
  return seen;
}

afterEach(() => {
  for (const [name, listener] of subscriptions.splice(0)) diagnostics.unsubscribe(name, listener);
});

describe('diagnostics channels', () => {
  it("publish every proxied request's start and end, each attempt with its endpoint, requeues and endpoint changes", async () => {
    const starts = listen<ProxyRequestStartMessage>('mcgravity:proxy:request:start');
    const ends = listen<ProxyRequestEndMessage>('mcgravity:proxy:request:end');
    const attemptStarts = listen<AttemptStartMessage>('mcgravity:attempt:start');
    const attemptEnds = listen<AttemptEndMessage>('mcgravity:attempt:end');
    const retries = listen<RetryMessage>('mcgravity:retry');
    const endpoints = listen<EndpointMessage>('mcgravity:endpoint');
    const live = await startUpstream((_req, res) => res.end('ok'));
    defer(() => live.close());
    const cluster = createCluster({
      name: 'web',
      backends: [
        { url: `http://127.0.0.1:${await closedPort()}`, id: 'dead' },
        { url: live.url, id: 'live' },
      ],
      balancer: 'round-robin',
      outlierDetection: { consecutiveLocalOriginFailures: 1, maxEjectionPercent: 50 },
    });
    defer(() => cluster.close({ timeoutMs: 100 }));
    const proxy = createProxy({ cluster });
    const port = ((await proxy.listen(0)).address() as AddressInfo).port;
    defer(() => proxy.close({ timeoutMs: 100 }));
    for (let i = 0; i < 3; i++) {
      const response = await fetch(`http://127.0.0.1:${port}/r${i}`, {
        headers: { 'x-request-id': `id-${i}` },
      });
      expect(await response.text()).toBe('ok');
    }
    expect(starts.map((m) => m.requestId)).toEqual(['id-0', 'id-1', 'id-2']);
    expect(ends.map((m) => [m.requestId, m.statusCode, m.endpoint])).toEqual([
      ['id-0', 200, 'live'],
      ['id-1', 200, 'live'],
      ['id-2', 200, 'live'],
    ]);
    expect(ends.every((m) => m.durationMs >= 0)).toBe(true);
    // The first request tried the dead endpoint, was requeued, and it was ejected.
    expect(attemptStarts.map((m) => m.endpoint)).toEqual(['dead', 'live', 'live', 'live']);
    expect(attemptEnds.map((m) => [m.endpoint, m.statusCode ?? 'error'])).toEqual([
      ['dead', 'error'],
      ['live', 200],
      ['live', 200],
      ['live', 200],
    ]);
    expect(attemptEnds[0]?.attempt).toBe(attemptStarts[0]?.attempt);
    expect(retries).toEqual([{ cluster: 'web', kind: 'requeue', attempt: 2 }]);
    expect(endpoints).toContainEqual({
      cluster: 'web',
      endpoint: 'dead',
      event: 'endpoint:ejected',
      reason: 'consecutive-local-failures',
    });
  });
});
