/**
 * gRPC through the proxy, end to end with the real @grpc/grpc-js client and servers: a cleartext
 * HTTP/2 listener in front, three replicas behind over h2c, the gRPC health check watching them.
 * Unary calls spread, streams of every kind arrive whole with their trailers, a stopped replica is
 * taken out by the health check while calls go on, a replica answering UNAVAILABLE is retried
 * elsewhere, and the proxy's own refusals reach the client as gRPC statuses it understands.
 */

import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { type Cluster, createCluster } from '../../src/cluster/Cluster.js';
import { grpcCheck } from '../../src/health/grpcCheck.js';
import { RateLimiter } from '../../src/limit/RateLimiter.js';
import { createProxy, type ProxyOptions } from '../../src/proxy/createProxy.js';
import { within } from '../helpers/async.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import {
  type EchoClientInstance,
  echoClient,
  type GrpcReplica,
  startReplica,
  unary,
} from '../helpers/grpc.js';

const defer = cleanupAfterEach({ ignoreErrors: true });

async function replicas(...specs: [string, Parameters<typeof startReplica>[1]?][]): Promise<GrpcReplica[]> {
  const made = await Promise.all(specs.map(([name, options]) => startReplica(name, options)));
  for (const replica of made) defer(() => replica.stop());
  return made;
}

function grpcCluster(
  backends: GrpcReplica[],
  extra: Partial<Parameters<typeof createCluster>[0]> = {},
): Cluster {
  const cluster = createCluster({
    name: 'echo',
    backends: backends.map((replica) => ({ url: replica.url, id: replica.name })),
    balancer: 'round-robin',
    pool: { protocol: 'h2c' },
    ...extra,
  });
  defer(() => cluster.close({ timeoutMs: 100 }));
  return cluster;
}

async function proxyFor(cluster: Cluster, options: Partial<ProxyOptions> = {}): Promise<EchoClientInstance> {
  const proxy = createProxy({ cluster, http2: { cleartext: true }, ...options });
  const server = await proxy.listen(0);
  defer(() => proxy.close({ timeoutMs: 200 }));
  const client = echoClient(`127.0.0.1:${(server.address() as AddressInfo).port}`);
  defer(async () => client.close());
  return client;
}

describe('gRPC through the proxy', () => {
  it('spreads unary calls over the replicas', async () => {
    const backends = await replicas(['a'], ['b'], ['c']);
    const client = await proxyFor(grpcCluster(backends));
    const served: string[] = [];
    for (let i = 0; i < 30; i++) {
      const answer = await unary(client, { text: `hello ${i}` });
      expect(answer.text).toBe(`hello ${i}`);
      served.push(String(answer.replica));
    }
    expect(backends.map((b) => b.calls.get('unary'))).toEqual([10, 10, 10]);
    expect(new Set(served)).toEqual(new Set(['a', 'b', 'c']));
  });

  it('relays a server stream of 10,000 messages whole, with its trailers', async () => {
    const client = await proxyFor(grpcCluster(await replicas(['a'])));
    const call = client.count({ n: 10_000 });
    let expected = 0;
    let inOrder = true;
    call.on('data', (message: { i: number }) => {
      if (message.i !== expected++) inOrder = false;
    });
    const { status, trailer } = await new Promise<{ status: grpc.StatusObject; trailer: grpc.Metadata }>(
      (resolve) => {
        let trailer = new grpc.Metadata();
        call.on('metadata', () => {});
        call.on('status', (status: grpc.StatusObject) => {
          trailer = status.metadata;
          resolve({ status, trailer });
        });
      },
    );
    expect(status.code).toBe(grpc.status.OK);
    expect(expected).toBe(10_000);
    expect(inOrder).toBe(true);
    expect(trailer.get('x-sent')).toEqual(['10000']);
  });

  it('relays a bidirectional stream message by message, and a client stream', async () => {
    const client = await proxyFor(grpcCluster(await replicas(['a'])));
    const chat = client.chat();
    // Ping-pong: each message is sent only after the previous echo came back, so nothing is
    // buffered anywhere waiting for the request to end.
    for (let i = 0; i < 100; i++) {
      const echoed = new Promise<{ echo?: unknown }>((resolve) => chat.once('data', resolve));
      chat.write({ text: `m${i}` });
      expect((await echoed).echo).toBe(`m${i}`);
    }
    chat.end();
    await new Promise((resolve) => chat.on('status', resolve));

    const sum = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const call = client.sum((error, value) => (error === null ? resolve(value ?? {}) : reject(error)));
      for (let n = 1; n <= 1000; n++) call.write({ n });
      call.end();
    });
    expect(sum.sum).toBe(500_500);
  });

  it('takes a stopped replica out by the gRPC health check while unary calls keep succeeding', async () => {
    const backends = await replicas(['a'], ['b'], ['c']);
    const cluster = grpcCluster(backends, {
      health: {
        check: grpcCheck({ service: 'demo.Echo' }),
        intervalMs: 50,
        timeoutMs: 500,
        unhealthyThreshold: 1,
      },
    });
    const down: string[] = [];
    cluster.on('endpoint:down', ({ id, reason }) => down.push(`${id}: ${reason}`));
    const client = await proxyFor(cluster);
    const failures: string[] = [];
    let calls = 0;
    let running = true;
    const loop = async () => {
      while (running && calls < 5000) {
        calls++;
        await unary(client, { text: 'x' }).catch((error: grpc.ServiceError) =>
          failures.push(`${error.code} ${error.details}`),
        );
      }
    };
    const loops = Array.from({ length: 8 }, loop);
    await within(() => calls > 100, 5000, 'traffic');
    await backends[1]?.stop();
    await within(() => down.length > 0, 5000, 'b marked down');
    const after = calls;
    await within(() => calls > after + 200, 5000, 'traffic after');
    running = false;
    await Promise.all(loops);
    expect(down[0]).toMatch(/^b: /);
    expect(failures).toEqual([]);

    // A service reported NOT_SERVING fails the check too.
    backends[2]?.health.setStatus('demo.Echo', 'NOT_SERVING');
    await within(() => down.some((line) => line.startsWith('c: NOT_SERVING')), 5000, 'c not serving');
  });

  it('retries a call that a replica answers UNAVAILABLE on another replica', async () => {
    const backends = await replicas(['sick', { failWith: grpc.status.UNAVAILABLE }], ['well']);
    const client = await proxyFor(grpcCluster(backends, { outlierDetection: false }));
    for (let i = 0; i < 10; i++) expect((await unary(client, { text: 'x' })).replica).toBe('well');
    expect(backends[0]?.calls.get('unary')).toBeGreaterThan(0); // it was tried, and refused
  });

  it('does not retry other statuses: they reach the client as the backend sent them', async () => {
    const backends = await replicas(['a', { failWith: grpc.status.INVALID_ARGUMENT }], ['b']);
    const client = await proxyFor(grpcCluster(backends));
    const error = (await unary(client, { text: 'x' }).catch((e: unknown) => e)) as grpc.ServiceError;
    expect(error.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(error.details).toBe('a is unavailable');
  });

  it('answers its own refusals as gRPC statuses: UNAVAILABLE, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED', async () => {
    const empty = createCluster({ name: 'none', backends: [], allowEmpty: true, pool: { protocol: 'h2c' } });
    defer(() => empty.close());
    const noUpstream = (await unary(await proxyFor(empty), {}).catch((e: unknown) => e)) as grpc.ServiceError;
    expect(noUpstream.code).toBe(grpc.status.UNAVAILABLE);
    expect(noUpstream.details).toMatch(/no eligible endpoint/);

    const limiter = new RateLimiter({ limit: 1, windowMs: 60_000 });
    const limited = await proxyFor(grpcCluster(await replicas(['a'])), { rateLimit: { limiter, key: 'ip' } });
    await unary(limited, {});
    const refused = (await unary(limited, {}).catch((e: unknown) => e)) as grpc.ServiceError;
    expect(refused.code).toBe(grpc.status.RESOURCE_EXHAUSTED);

    // The call's deadline (grpc-timeout) bounds the proxy's wait for the answer's headers.
    const slow = await proxyFor(grpcCluster(await replicas(['slow', { delayMs: 2000 }])));
    const started = Date.now();
    const late = (await unary(slow, {}, 300).catch((e: unknown) => e)) as grpc.ServiceError;
    expect(late.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(Date.now() - started).toBeLessThan(1500);
  });
});
