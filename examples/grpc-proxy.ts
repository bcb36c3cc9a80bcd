/**
 * A gRPC load balancer: clients speak HTTP/2 in cleartext to the proxy, which spreads their calls
 * over three replicas (HTTP/2 to each, many calls over one connection), watches them with the
 * standard gRPC health check, and keeps calls succeeding while a replica goes away.
 */
import type { AddressInfo } from 'node:net';
import { createCluster, createProxy, grpcCheck } from 'mcgravity';
import { echoClient, startReplica, unary } from './support/grpcReplicas.js';

const replicas = await Promise.all(['a', 'b', 'c'].map((name) => startReplica(name)));

const cluster = createCluster({
  name: 'echo',
  backends: replicas.map((replica) => ({ url: replica.url, id: replica.name })),
  balancer: 'round-robin',
  pool: { protocol: 'h2c' }, // gRPC servers speak HTTP/2; without TLS that is h2c
  health: { check: grpcCheck({ service: 'demo.Echo' }), intervalMs: 200, unhealthyThreshold: 1 },
});
cluster.on('endpoint:down', ({ id, reason }) => console.log(`health check: ${id} is down (${reason})`));

const proxy = createProxy({ cluster, http2: { cleartext: true } });
const server = await proxy.listen(0);
const client = echoClient(`127.0.0.1:${(server.address() as AddressInfo).port}`);

const answers: string[] = [];
for (let i = 0; i < 6; i++) answers.push(String((await unary(client, { text: `call ${i}` })).replica));
console.log(`unary calls answered by: ${answers.join(' ')}`);

// A server stream: 1,000 messages, then the status and the replica's trailer.
await new Promise<void>((resolve) => {
  let received = 0;
  const call = client.count({ n: 1000 });
  call.on('data', () => received++);
  call.on('status', (status) => {
    console.log(
      `server stream: ${received} messages, status ${status.code}, x-sent ${status.metadata.get('x-sent')}`,
    );
    resolve();
  });
});

// Replica b stops. The health check takes it out; calls keep going to a and c.
const down = new Promise((resolve) => cluster.once('endpoint:down', resolve));
await replicas[1]?.stop();
await down;
const after: string[] = [];
for (let i = 0; i < 4; i++) after.push(String((await unary(client, { text: 'again' })).replica));
console.log(`after b stopped: ${after.join(' ')}`);

client.close();
await proxy.close();
await cluster.close();
for (const replica of replicas) await replica.stop();
console.log('done');
