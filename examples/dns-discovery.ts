/**
 * A cluster whose backends come from DNS, as pods behind a Kubernetes headless service do: the SRV
 * records of `_http._tcp.api.example` list them, and the cluster follows the records as they change
 * (re-resolved when their TTL runs out), draining the ones that leave. When DNS stops answering,
 * the cluster keeps the last set it had.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createCluster, dnsDiscovery } from 'mcgravity';
import { startDnsServer } from './support/dnsServer.js';

async function backend(name: string): Promise<http.Server> {
  const server = http.createServer((_req, res) => res.end(name));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}
const portOf = (server: http.Server) => (server.address() as AddressInfo).port;

const servers = { blue: await backend('blue'), green: await backend('green') };
const record = (server: http.Server) => ({
  priority: 0,
  weight: 10,
  port: portOf(server),
  target: 'node.example',
});

// The stand-in for your DNS: records with a 1-second TTL.
const dns = await startDnsServer(
  {
    '_http._tcp.api.example': { SRV: [record(servers.blue)] },
    'node.example': { A: ['127.0.0.1'] },
  },
  { ttl: 1 },
);

const cluster = createCluster({
  name: 'api',
  balancer: 'round-robin',
  discovery: dnsDiscovery({
    name: '_http._tcp.api.example',
    type: 'SRV',
    servers: [dns.address], // leave out to use the system's resolvers
    minTtlMs: 500, // never look up more often than this, whatever the TTL
    timeoutMs: 200,
    tries: 1,
  }),
});
const names = (ids: string[]) =>
  ids.map((id) => (id.endsWith(`:${portOf(servers.blue)}`) ? 'blue' : 'green'));
const changed = new Promise<void>((resolve) => {
  cluster.on('discovery:update', ({ added, removed }) => {
    console.log(`update: added [${names(added)}] removed [${names(removed)}]`);
    if (removed.length > 0) resolve();
  });
});
const failed = new Promise<void>((resolve) => {
  cluster.once('discovery:error', ({ error, kept }) => {
    console.log(`DNS failed (${error.message}): kept ${kept} backend(s)`);
    resolve();
  });
});

await cluster.ready();
const answers = async () => {
  const seen: string[] = [];
  for (let i = 0; i < 4; i++) seen.push(await (await cluster.request({ path: '/' })).body.text());
  return seen.join(' ');
};
console.log(`first answers: ${await answers()}`);

// A deploy replaces blue with green: the records change, and within a TTL the cluster follows.
dns.zone.set('_http._tcp.api.example', { SRV: [record(servers.green)] });
await changed;
console.log(`after the deploy: ${await answers()}`);

// DNS goes quiet: look-ups time out, and the cluster keeps serving from the set it has.
dns.pause();
await failed;
console.log(`while DNS is down: ${await answers()}`);
console.log(`stats: ${JSON.stringify(cluster.stats().discovery)}`);

await cluster.close();
await dns.close();
for (const server of Object.values(servers)) server.close();
