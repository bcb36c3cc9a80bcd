/**
 * Reloading a running proxy (what SIGHUP does), in-process: a Runtime serving real requests from 32
 * clients while its configuration changes under it. Kept clusters keep their instance and state,
 * backends join and drain out, changed clusters are swapped, listeners open and close, certificates
 * are re-read, and a reload that cannot be applied changes nothing.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Agent, request } from 'undici';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/cli/config/load.js';
import type { ProxyConfig } from '../../src/cli/config/schema.js';
import { Runtime } from '../../src/cli/Runtime.js';
import { planCluster } from '../../src/cli/reload.js';
import { createCluster } from '../../src/cluster/Cluster.js';
import { within } from '../helpers/async.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { loadGets } from '../helpers/load.js';
import { selfSigned, tlsSkipReason } from '../helpers/tls.js';
import { startUpstream, type Upstream } from '../helpers/upstreams.js';

const defer = cleanupAfterEach();
const quiet = pino({ level: 'silent' });

async function backend(name: string): Promise<Upstream> {
  const server = await startUpstream((_req, res) => res.end(name));
  defer(() => server.close());
  return server;
}

const config = (text: string, file = 'proxy.yaml'): ProxyConfig => parseConfig(text, file);

async function start(text: string, file = 'proxy.yaml'): Promise<Runtime> {
  const runtime = await Runtime.start(file, config(text, file), quiet);
  defer(() => runtime.close(0));
  return runtime;
}

function load(url: () => string) {
  return loadGets(() => `${url()}/x`, defer);
}

const twoBackends = (a: Upstream, b: Upstream, extra = '') => `
global: { metrics_port: 0, shutdown_timeout: 5s }
clusters:
  api:
    load_balancing: round_robin
${extra}    backends:
      - { address: "127.0.0.1:${a.port}" }
      - { address: "127.0.0.1:${b.port}" }
listeners:
  - { name: web, address: "127.0.0.1:0", cluster: api }
`;

describe('reload', () => {
  it('keeps a cluster whose settings did not change, and moves its backends under 32-way load with no failed request', async () => {
    const [a, b, c] = [await backend('a'), await backend('b'), await backend('c')];
    const runtime = await start(twoBackends(a, b));
    const url = runtime.addresses().web as string;
    const cluster = runtime.clusters.api;
    const traffic = load(() => url);
    await within(() => traffic.sent() > 200, 10_000, 'traffic through the old configuration');

    const text = twoBackends(a, b).replace(`"127.0.0.1:${a.port}"`, `"127.0.0.1:${c.port}"`);
    const summary = await runtime.reload(config(text));
    expect(summary.clusters.kept).toEqual(['api']);
    expect(summary.backends).toEqual({
      added: [`api/127.0.0.1:${c.port}`],
      removed: [`api/127.0.0.1:${a.port}`],
    });
    expect(runtime.clusters.api).toBe(cluster); // same instance: pools, health and windows kept
    expect(runtime.addresses().web).toBe(url); // the same server, handed to a new proxy

    await within(() => (traffic.answers.get('c') ?? 0) > 100, 10_000, 'the new backend serving');
    await within(
      () => cluster?.endpoints.every((e) => e.id !== `127.0.0.1:${a.port}`) === true,
      10_000,
      'the removed backend drained out',
    );
    const fromA = a.requests.length;
    await within(() => (traffic.answers.get('c') ?? 0) > 300, 10_000, 'more traffic');
    await traffic.stop();
    expect(a.requests.length).toBe(fromA);
    expect(traffic.failures).toEqual([]);
  });

  it('rebuilds a cluster whose settings changed, and closes the old one once its requests have finished', async () => {
    let release: (() => void) | undefined;
    const slow = await startUpstream((req, res) => {
      if (req.url === '/slow') release = () => res.end('slow done');
      else res.end('s');
    });
    defer(() => slow.close());
    const b = await backend('b');
    const runtime = await start(twoBackends(slow, b));
    const url = runtime.addresses().web as string;
    const old = runtime.clusters.api;
    const inFlight = request(`${url}/slow`).then((r) => r.body.text());
    await within(() => release !== undefined, 5_000, 'the slow request reached its backend');
    const traffic = load(() => url);
    await within(() => traffic.sent() > 100, 10_000, 'traffic');

    const summary = await runtime.reload(
      config(twoBackends(slow, b).replace('round_robin', 'least_request')),
    );
    expect(summary.clusters.rebuilt).toEqual(['api (its settings changed)']);
    expect(runtime.clusters.api).not.toBe(old);
    await within(() => traffic.sent() > 400, 10_000, 'traffic through the new cluster');
    await traffic.stop();
    expect(traffic.failures).toEqual([]);
    release?.();
    expect(await inFlight).toBe('slow done');
  });

  it('opens new listeners, closes removed ones, and keeps rate-limit counts whose rules did not change', async () => {
    const a = await backend('a');
    const limited = (listeners: string) => `
global: { metrics_port: 0 }
clusters:
  api:
    backends: [{ address: "127.0.0.1:${a.port}" }]
    rate_limits: { rules: [{ client_type: all, limit: 3, window: 1m }] }
listeners:
${listeners}`;
    const runtime = await start(limited('  - { name: one, address: "127.0.0.1:0", cluster: api }\n'));
    const one = runtime.addresses().one as string;
    const status = async (url: string) => {
      const response = await request(`${url}/x`);
      await response.body.dump();
      return response.statusCode;
    };
    expect([await status(one), await status(one)]).toEqual([200, 200]);

    const summary = await runtime.reload(
      config(
        limited(
          '  - { name: two, address: "127.0.0.1:0", cluster: api }\n  - { name: one, address: "127.0.0.1:0", cluster: api }\n',
        ),
      ),
    );
    // Both listeners ask for 127.0.0.1:0: the first takes over the running server, the other is new.
    expect(summary.listeners.kept).toHaveLength(1);
    expect(summary.listeners.opened).toHaveLength(1);
    const addresses = runtime.addresses();
    const fresh = [addresses.one, addresses.two].find((u) => u !== one) as string;
    // One request left of the three, wherever it comes from: the counts outlived the reload.
    expect([await status(fresh), await status(one)]).toEqual([200, 429]);

    await runtime.reload(
      config(
        limited('  - { name: two, address: "127.0.0.1:0", cluster: api }\n').replace('limit: 3', 'limit: 4'),
      ),
    );
    expect(Object.keys(runtime.addresses()).sort()).toEqual(['admin', 'two']);
    // New rules start new counts.
    expect(await status(runtime.addresses().two as string)).toBe(200);
  });

  it('changes nothing when the new configuration cannot be set up (a port already taken)', async () => {
    const [a, b] = [await backend('a'), await backend('b')];
    const runtime = await start(twoBackends(a, b));
    const url = runtime.addresses().web as string;
    const cluster = runtime.clusters.api;
    const taken = `127.0.0.1:${a.port}`;
    const text = `${twoBackends(a, b).replace('round_robin', 'random')}  - { name: clash, address: "${taken}", cluster: api }\n`;
    await expect(runtime.reload(config(text))).rejects.toThrow(/EADDRINUSE/);
    expect(runtime.clusters.api).toBe(cluster);
    expect(Object.keys(runtime.addresses()).sort()).toEqual(['admin', 'web']);
    const response = await request(`${url}/x`);
    expect(response.statusCode).toBe(200);
    await response.body.dump();
  });

  const skip = tlsSkipReason();
  it.skipIf(skip !== undefined)(
    `re-reads certificate files, so a renewed one applies ${skip ?? ''}`,
    async () => {
      const a = await backend('a');
      const dir = mkdtempSync(join(tmpdir(), 'mcgravity-reload-tls-'));
      const first = selfSigned(dir, 'proxy');
      const file = join(dir, 'proxy.yaml');
      const text = `global: { metrics_port: 0 }
clusters: { api: { backends: [{ address: "127.0.0.1:${a.port}" }] } }
listeners:
  - { name: web, address: "127.0.0.1:0", cluster: api, protocol: https, ssl: { cert_file: proxy.crt, key_file: proxy.key } }
`;
      writeFileSync(file, text);
      const runtime = await start(text, file);
      const url = runtime.addresses().web as string;
      const trusting = (ca: string) => {
        const agent = new Agent({ connect: { ca }, pipelining: 0 });
        defer(() => agent.close());
        return agent;
      };
      expect(await (await request(`${url}/x`, { dispatcher: trusting(first.cert) })).body.text()).toBe('a');

      const renewed = selfSigned(dir, 'proxy'); // the same files, a new certificate
      await runtime.reload(config(text, file));
      expect(runtime.addresses().web).toBe(url);
      expect(await (await request(`${url}/x`, { dispatcher: trusting(renewed.cert) })).body.text()).toBe('a');
      await expect(request(`${url}/x`, { dispatcher: trusting(first.cert) })).rejects.toThrow();
    },
  );
});

describe('planCluster', () => {
  const file = (backends: string, balancing = 'round_robin') =>
    config(`
clusters:
  api:
    load_balancing: ${balancing}
    backends: [${backends}]
listeners: [{ name: web, address: "127.0.0.1:0", cluster: api }]
`);
  const running = createCluster({
    name: 'api',
    backends: ['http://127.0.0.1:1', 'http://127.0.0.1:2'],
    health: false,
  });
  defer(() => running.close());
  const before = file('{ address: "127.0.0.1:1" }, { address: "127.0.0.1:2" }');

  it.each([
    [
      'a weight change keeps everything',
      '{ address: "127.0.0.1:1", weight: 5 }, { address: "127.0.0.1:2" }',
      {
        kind: 'keep',
        add: [],
        remove: [],
        keep: [
          { id: '127.0.0.1:1', weight: 5 },
          { id: '127.0.0.1:2', weight: 1 },
        ],
      },
    ],
    [
      'a new backend is added, a missing one removed',
      '{ address: "127.0.0.1:2" }, { address: "127.0.0.1:3" }',
      {
        kind: 'keep',
        add: [{ url: 'http://127.0.0.1:3', weight: 1, priority: 0 }],
        remove: ['127.0.0.1:1'],
        keep: [{ id: '127.0.0.1:2', weight: 1 }],
      },
    ],
    [
      'a backend whose zone changed rebuilds',
      '{ address: "127.0.0.1:1", zone: b }, { address: "127.0.0.1:2" }',
      {
        kind: 'rebuild',
        reason: 'backend 127.0.0.1:1 changed',
      },
    ],
  ])('%s', (_name, backends, plan) => {
    expect(planCluster('api', before, file(backends), running, new Set())).toEqual(plan);
  });

  it('rebuilds when a backend being removed comes back, or the settings changed', () => {
    const same = file('{ address: "127.0.0.1:1" }, { address: "127.0.0.1:2" }');
    expect(planCluster('api', before, same, running, new Set(['127.0.0.1:1'])).kind).toBe('rebuild');
    const other = file('{ address: "127.0.0.1:1" }, { address: "127.0.0.1:2" }', 'random');
    expect(planCluster('api', before, other, running, new Set())).toEqual({
      kind: 'rebuild',
      reason: 'its settings changed',
    });
    expect(planCluster('api', before, same, undefined, new Set())).toEqual({ kind: 'create' });
  });
});
