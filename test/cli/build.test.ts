/**
 * A configuration's clusters as the command builds them: here, backends found by `discovery` (DNS
 * served on loopback by the test, and a file relative to the configuration), in a running Runtime.
 */
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/cli/config/load.js';
import { Runtime } from '../../src/cli/Runtime.js';
import { within } from '../helpers/async.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { startDnsServer } from '../helpers/dnsServer.js';
import { echoClient, startReplica, unary } from '../helpers/grpc.js';
import { startUpstream, type Upstream } from '../helpers/upstreams.js';

const defer = cleanupAfterEach();

async function backend(name: string): Promise<Upstream> {
  const server = await startUpstream((_req, res) => res.end(name));
  defer(() => server.close());
  return server;
}

async function start(text: string, file: string): Promise<Runtime> {
  const runtime = await Runtime.start(file, parseConfig(text, file), pino({ level: 'silent' }));
  defer(() => runtime.close(0));
  return runtime;
}

async function served(url: string, count: number): Promise<string[]> {
  const names = new Set<string>();
  for (let i = 0; i < count; i++) {
    const response = await request(url);
    names.add(await response.body.text());
  }
  return [...names].sort();
}

const listener = '  - { name: web, address: "127.0.0.1:0", cluster: api }';

describe('clusters with discovery in the file', () => {
  it('serves from SRV-found backends at once after start, and follows the records', async () => {
    const [a, b] = [await backend('a'), await backend('b')];
    const dns = await startDnsServer(
      {
        '_http._tcp.api.test': { SRV: [{ priority: 0, weight: 1, port: a.port, target: 'node.api.test' }] },
        'node.api.test': { A: ['127.0.0.1'] },
      },
      { ttl: 1 },
    );
    defer(() => dns.close());
    const runtime = await start(
      `clusters:
  api:
    load_balancing: round_robin
    discovery:
      dns: { name: _http._tcp.api.test, type: SRV, servers: ["${dns.address}"], min_ttl: 100ms }
listeners:
${listener}
`,
      'proxy.yaml',
    );
    const url = runtime.addresses().web as string;
    expect(await served(url, 4)).toEqual(['a']); // the first request already has a backend
    dns.zone.set('_http._tcp.api.test', {
      SRV: [a.port, b.port].map((port) => ({ priority: 0, weight: 1, port, target: 'node.api.test' })),
    });
    await within(() => runtime.clusters.api?.endpoints.length === 2, 2000, 'b found');
    expect(await served(url, 4)).toEqual(['a', 'b']);
  });

  it('reads a discovery file relative to the configuration, and again when it is replaced', async () => {
    const [a, b] = [await backend('a'), await backend('b')];
    const folder = mkdtempSync(join(tmpdir(), 'mcgravity-cli-found-'));
    const write = (backends: Upstream[]) => {
      writeFileSync(join(folder, 'next.json'), JSON.stringify(backends.map((u) => ({ url: u.url }))));
      renameSync(join(folder, 'next.json'), join(folder, 'api.json'));
    };
    write([a]);
    const runtime = await start(
      `clusters:
  api:
    discovery:
      file: { path: api.json }
listeners:
${listener}
`,
      join(folder, 'proxy.yaml'),
    );
    const url = runtime.addresses().web as string;
    expect(await served(url, 3)).toEqual(['a']);
    write([b]);
    await within(async () => (await served(url, 1))[0] === 'b', 2000, 'b serves');
    expect(runtime.clusters.api?.endpoints.map((e) => e.url)).toEqual([b.url]);
  });
});

describe('protocols in the file', () => {
  it('serves gRPC on an h2 listener from a grpc cluster watched by the gRPC health check', async () => {
    const replicas = [await startReplica('a'), await startReplica('b')];
    for (const replica of replicas) defer(() => replica.stop());
    const runtime = await start(
      `clusters:
  echo:
    protocol: grpc
    load_balancing: round_robin
    health_check: { type: grpc, grpc_service: demo.Echo, interval: 100ms }
    backends:
${replicas.map((r) => `      - { address: "127.0.0.1:${r.port}", id: ${r.name} }`).join('\n')}
listeners:
  - { name: rpc, address: "127.0.0.1:0", protocol: grpc, cluster: echo }
`,
      'proxy.yaml',
    );
    const client = echoClient((runtime.addresses().rpc as string).replace('http://', ''));
    defer(async () => client.close());
    const served = new Set<string>();
    for (let i = 0; i < 4; i++) served.add(String((await unary(client, { text: 'x' })).replica));
    expect([...served].sort()).toEqual(['a', 'b']);
    await replicas[0]?.stop();
    await within(() => runtime.clusters.echo?.stats().endpoints[0]?.healthy === false, 3000, 'a down');
    for (let i = 0; i < 4; i++) expect((await unary(client, { text: 'x' })).replica).toBe('b');
  });

  it('relays connections on a tcp listener to a tcp cluster, with the PROXY protocol', async () => {
    const heard: string[] = [];
    const backend = net.createServer({ allowHalfOpen: true }, (socket) => {
      let data = '';
      socket.setEncoding('latin1').on('data', (chunk) => {
        data += chunk;
      });
      socket.on('end', () => {
        // The TCP health check connects and closes without a byte; only the client's connection counts.
        if (data !== '') heard.push(data);
        socket.end('pong');
      });
    });
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
    defer(() => new Promise((resolve) => backend.close(resolve)));
    const port = (backend.address() as AddressInfo).port;
    const runtime = await start(
      `clusters:
  store:
    protocol: tcp
    health_check: { type: tcp, interval: 1s }
    backends: [{ address: "127.0.0.1:${port}" }]
listeners:
  - name: redis
    address: "127.0.0.1:0"
    protocol: tcp
    cluster: store
    tcp: { proxy_protocol: v1, idle_timeout: 30s }
`,
      'proxy.yaml',
    );
    const url = new URL(runtime.addresses().redis as string);
    expect(url.protocol).toBe('tcp:');
    const client = net.connect({ host: '127.0.0.1', port: Number(url.port), allowHalfOpen: true });
    let answer = '';
    client.setEncoding('latin1').on('data', (chunk) => {
      answer += chunk;
    });
    await new Promise((resolve) => client.once('connect', resolve));
    const clientPort = client.localPort;
    client.end('ping');
    await new Promise((resolve) => client.once('end', resolve));
    client.destroy();
    expect(answer).toBe('pong');
    expect(heard).toEqual([`PROXY TCP4 127.0.0.1 127.0.0.1 ${clientPort} ${url.port}\r\nping`]);
  });

  it('refuses a tcp listener with routes or an HTTP cluster, and an HTTP listener on a tcp cluster', () => {
    const text = `clusters:
  store: { protocol: tcp, backends: [{ address: "127.0.0.1:6379" }] }
  web: { backends: [{ address: "127.0.0.1:8080" }] }
listeners:
  - { name: a, address: "127.0.0.1:0", protocol: tcp, cluster: web }
  - { name: b, address: "127.0.0.1:0", cluster: store }
  - { name: c, address: "127.0.0.1:0", protocol: tcp, routes: [{ cluster: store }] }
`;
    let message = '';
    try {
      parseConfig(text, 'proxy.yaml');
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain(
      'listeners[0].cluster: a tcp listener needs a cluster with protocol: tcp ("web" speaks http1)',
    );
    expect(message).toContain(
      'listeners[1]: cluster "store" is a tcp cluster: only a tcp listener can send to it',
    );
    expect(message).toContain(
      'listeners[2].routes: a tcp listener relays connections: give it a cluster, not routes',
    );
  });
});
