import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { describe, expect, it } from 'vitest';
import { within } from '../helpers/async.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { cliHelpers, root } from '../helpers/cli.js';
import { selfSigned, tlsSkipReason } from '../helpers/tls.js';
import { startUpstream, type Upstream } from '../helpers/upstreams.js';

const defer = cleanupAfterEach();
const { mcgravity, start } = cliHelpers(defer);

async function upstream(name: string): Promise<Upstream> {
  const server = await startUpstream((req, res) => {
    if (req.url === '/health') return void res.end('ok');
    res.end(`${name} ${req.url}`);
  });
  defer(() => server.close());
  return server;
}

/** examples/proxy.yaml with its backends and ports rewritten to this test's. */
function exampleConfig(backends: Upstream[], extra = ''): string {
  let text = readFileSync(join(root, 'examples/proxy.yaml'), 'utf8');
  backends.forEach((backend, i) => {
    text = text.replace(`"127.0.0.1:${3001 + i}"`, `"127.0.0.1:${backend.port}"`);
  });
  text = text.replace(/127\.0\.0\.1:808\d/g, '127.0.0.1:0').replace('metrics_port: 9090', 'metrics_port: 0');
  const dir = mkdtempSync(join(tmpdir(), 'mcgravity-cli-'));
  const file = join(dir, 'proxy.yaml');
  writeFileSync(file, text + extra);
  return file;
}

describe('mcgravity', () => {
  it('prints its version and its help', async () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
    expect((await mcgravity(['--version'])).stdout.trim()).toBe(`mcgravity ${pkg.version}`);
    const help = await mcgravity(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--check');
    const none = await mcgravity([]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('no configuration: pass --config FILE or set MCGRAVITY_CONFIG');
  });

  const tlsSkip = tlsSkipReason();
  it.skipIf(tlsSkip !== undefined)(
    `checks the product's maritime proxy.yaml as written ${tlsSkip ?? ''}`,
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'mcgravity-maritime-'));
      for (const name of ['claims', 'underwriting', 'financial']) selfSigned(dir, `maritime-${name}`);
      copyFileSync(join(root, 'test/cli/fixtures/maritime.yaml'), join(dir, 'proxy.yaml'));
      const checked = await mcgravity(['--check', 'proxy.yaml'], dir);
      expect(checked.stderr).toBe('');
      expect(checked.code).toBe(0);
      expect(checked.stdout).toContain('# proxy.yaml: valid');
      expect(checked.stdout).toMatch(/claims_processing:\n\s+load_balancing: least_connections/);
    },
  );

  it('checks examples/proxy.yaml and prints it with its defaults', async () => {
    const checked = await mcgravity(['--check', 'examples/proxy.yaml']);
    expect(checked.code).toBe(0);
    expect(checked.stdout).toContain('# examples/proxy.yaml: valid');
    // Defaults filled in: the pool's connections, the listener's first-byte timeout.
    expect(checked.stdout).toMatch(/connection_pool:\n\s+max_connections: 128/);
    expect(checked.stdout).toMatch(/first_byte: 30s/);
  });

  it.each([
    [
      'a misspelt key',
      'clusters:\n  web:\n    backends:\n      - address: "127.0.0.1:3000"\n        wieght: 3\nlisteners:\n  - name: a\n    address: "127.0.0.1:0"\n    cluster: web\n',
      /bad\.yaml:5:9 clusters\.web\.backends\[0\]\.wieght: unknown key "wieght" \(did you mean "weight"\?\)/,
    ],
    [
      'a wrong type',
      'clusters:\n  web:\n    backends:\n      - address: "127.0.0.1:3000"\n        weight: heavy\nlisteners:\n  - name: a\n    address: "127.0.0.1:0"\n    cluster: web\n',
      /bad\.yaml:5:17 clusters\.web\.backends\[0\]\.weight: expected a number >= 0, got "heavy"/,
    ],
    [
      'a bad indent',
      'clusters:\n  web:\n    backends:\n      - address: "127.0.0.1:3000"\n     weight: 2\nlisteners: []\n',
      /bad\.yaml:5:6 clusters\.web\.weight: invalid YAML: .*\(check the indentation\)/,
    ],
    [
      'a listener for a cluster that does not exist',
      'clusters:\n  web:\n    backends: [{ address: "127.0.0.1:3000" }]\nlisteners:\n  - name: a\n    address: "127.0.0.1:0"\n    cluster: wbe\n',
      /bad\.yaml:7:14 listeners\[0\]\.cluster: no cluster named "wbe" \(clusters: web\)/,
    ],
  ])('refuses %s with exit 2, the file, line, column and key path', async (_what, text, message) => {
    const dir = mkdtempSync(join(tmpdir(), 'mcgravity-bad-'));
    writeFileSync(join(dir, 'bad.yaml'), text);
    const result = await mcgravity(['--check', 'bad.yaml'], dir);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
  });

  it('serves through every listener of examples/proxy.yaml, logs each request, and drains on SIGTERM', async () => {
    const backends = [await upstream('claims-1'), await upstream('claims-2'), await upstream('underwriting')];
    const proxy = await start(exampleConfig(backends));
    const { claims_proxy: claims, underwriting_proxy: underwriting, admin } = proxy.urls;
    const served = new Set<string>();
    for (let i = 0; i < 6; i++) served.add(await (await request(`${claims}/policy/${i}`)).body.text());
    expect([...new Set([...served].map((s) => s.split(' ')[0]))].sort()).toEqual(['claims-1', 'claims-2']);
    expect(await (await request(`${underwriting}/quote`)).body.text()).toBe('underwriting /quote');
    expect(await (await request(`${underwriting}/claims/7`)).body.text()).toMatch(
      /^claims-[12] \/claims\/7$/,
    );
    expect((await request(`${admin}/ready`)).statusCode).toBe(200);
    expect(await (await request(`${admin}/metrics`)).body.text()).toContain('mcgravity_requests_total');

    await within(() => proxy.stdout.length >= 8, 5_000, 'eight access log lines');
    const entries = proxy.stdout.map((line) => JSON.parse(line) as Record<string, unknown>);
    for (const entry of entries) {
      for (const field of [
        'time',
        'requestId',
        'client',
        'method',
        'path',
        'status',
        'cluster',
        'endpoint',
        'attempts',
        'durationMs',
        'bytesIn',
        'bytesOut',
        'userAgent',
        'error',
      ])
        expect(entry, field).toHaveProperty(field);
    }
    expect(entries.find((e) => e.path === '/quote')).toMatchObject({
      method: 'GET',
      status: 200,
      cluster: 'underwriting_services',
      attempts: 1,
    });

    // SIGTERM with 32 requests in flight: every one completes, then the process exits 0.
    const held: (() => void)[] = [];
    backends[2]?.server.removeAllListeners('request');
    backends[2]?.server.on('request', (_req, res) => {
      held.push(() => res.end('late answer'));
    });
    const inFlight = Array.from({ length: 32 }, (_, i) =>
      request(`${underwriting}/slow/${i}`).then(async (r) => `${r.statusCode} ${await r.body.text()}`),
    );
    await within(() => held.length === 32, 10_000, '32 requests at the backend');
    proxy.child.kill('SIGTERM');
    await within(
      () => proxy.log.some((e) => String(e.msg).startsWith('draining')),
      5_000,
      'the drain started',
    );
    expect(proxy.child.exitCode).toBe(null);
    for (const release of held) release();
    expect(await Promise.all(inFlight)).toEqual(Array(32).fill('200 late answer'));
    expect(await proxy.exited).toBe(0);
  });

  const skip = tlsSkipReason();
  it.skipIf(skip !== undefined)(
    `serves an https listener with its certificate files ${skip ?? ''}`,
    async () => {
      const backend = await upstream('secure');
      const dir = mkdtempSync(join(tmpdir(), 'mcgravity-https-'));
      const { cert } = selfSigned(dir, 'proxy');
      const file = join(dir, 'proxy.yaml');
      writeFileSync(
        file,
        `global: { metrics_port: 0 }
clusters:
  web: { backends: [{ address: "127.0.0.1:${backend.port}" }] }
listeners:
  - name: tls
    address: "127.0.0.1:0"
    protocol: https
    cluster: web
    ssl: { enabled: true, cert_file: proxy.crt, key_file: proxy.key }
`,
      );
      const proxy = await start(file);
      expect(proxy.urls.tls).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const dispatcher = new Agent({ connect: { ca: cert } });
      defer(() => dispatcher.close());
      const url = (proxy.urls.tls as string).replace('127.0.0.1', 'localhost');
      expect(await (await request(`${url}/hello`, { dispatcher })).body.text()).toBe('secure /hello');
    },
  );

  it('reloads on SIGHUP: a broken file changes nothing, a good one applies without a restart', async () => {
    const [a, b] = [await upstream('a'), await upstream('b')];
    const dir = mkdtempSync(join(tmpdir(), 'mcgravity-hup-'));
    const file = join(dir, 'proxy.yaml');
    const text = (port: number) => `global: { metrics_port: 0 }
clusters:
  web: { backends: [{ address: "127.0.0.1:${port}" }] }
listeners:
  - { name: web, address: "127.0.0.1:0", cluster: web }
`;
    writeFileSync(file, text(a.port));
    const proxy = await start(file);
    const url = proxy.urls.web as string;
    const body = async () => (await request(`${url}/x`)).body.text();
    expect(await body()).toBe('a /x');

    writeFileSync(file, text(a.port).replace('backends:', 'backend:'));
    proxy.child.kill('SIGHUP');
    await within(
      () => proxy.log.some((e) => String(e.msg).startsWith('reload refused')),
      10_000,
      'the refusal logged',
    );
    const refusal = proxy.log.find((e) => String(e.msg).startsWith('reload refused'));
    expect(refusal?.detail).toMatch(/proxy\.yaml:3:\d+ clusters\.web\.backend: unknown key "backend"/);
    expect(await body()).toBe('a /x');

    // 32 clients send GETs while a backend is added and the other removed.
    const failures: string[] = [];
    const served = new Map<string, number>();
    let running = true;
    const clients = Array.from({ length: 32 }, async () => {
      while (running) {
        try {
          const response = await request(`${url}/x`);
          const text = await response.body.text();
          if (response.statusCode !== 200) failures.push(`${response.statusCode} ${text}`);
          else served.set(text, (served.get(text) ?? 0) + 1);
        } catch (error) {
          failures.push(String(error));
        }
      }
    });
    await within(() => (served.get('a /x') ?? 0) > 200, 10_000, 'load on the first backend');
    writeFileSync(file, text(b.port));
    proxy.child.kill('SIGHUP');
    await within(() => proxy.log.some((e) => e.msg === 'reloaded'), 10_000, 'the reload logged');
    await within(() => (served.get('b /x') ?? 0) > 200, 10_000, 'load on the new backend');
    const fromA = a.requests.length;
    await within(() => (served.get('b /x') ?? 0) > 600, 10_000, 'more load');
    running = false;
    await Promise.all(clients);
    expect(failures).toEqual([]);
    expect(a.requests.length).toBe(fromA); // drained: nothing new reached the removed backend
    expect(proxy.log.find((e) => e.msg === 'reloaded')).toMatchObject({
      backends: { added: [`web/127.0.0.1:${b.port}`], removed: [`web/127.0.0.1:${a.port}`] },
    });
    expect(proxy.child.exitCode).toBe(null);
    expect(await body()).toBe('b /x');
    expect(proxy.urls.web).toBe(url);
    proxy.child.kill('SIGTERM');
    expect(await proxy.exited).toBe(0);
  });
});
