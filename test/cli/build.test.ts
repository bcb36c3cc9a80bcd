/**
 * A configuration's clusters as the command builds them: here, backends found by `discovery` (DNS
 * served on loopback by the test, and a file relative to the configuration), in a running Runtime.
 */
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
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
