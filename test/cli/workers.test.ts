/**
 * `mcgravity --workers 2` as a user runs it: two worker processes share the listener, the primary's
 * admin API adds up their statistics and sends each change to both, a crashed worker is replaced,
 * SIGHUP reloads every worker, and SIGTERM drains them all.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { within } from '../helpers/async.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { CLI, cliHelpers, root } from '../helpers/cli.js';
import { closedPort, startUpstream, type Upstream } from '../helpers/upstreams.js';

const defer = cleanupAfterEach();
const { start } = cliHelpers(defer);
const TOKEN = 'admin-token-0123456789';

async function upstream(name: string): Promise<Upstream> {
  const server = await startUpstream((_req, res) => res.end(name));
  defer(() => server.close());
  return server;
}

/** `count` GETs, 8 at a time: who answered each. */
async function answers(url: string, count: number): Promise<string[]> {
  const out: string[] = [];
  const loop = async () => {
    while (out.length < count) {
      out.push('');
      const i = out.length - 1;
      const response = await request(`${url}/x`);
      out[i] = response.statusCode === 200 ? await response.body.text() : `status ${response.statusCode}`;
    }
  };
  await Promise.all(Array.from({ length: 8 }, loop));
  return out;
}

describe('mcgravity --workers', () => {
  it('serves from every worker, sums their stats, applies admin changes and reloads in all, and drains on SIGTERM', async () => {
    const [a, b, c] = [await upstream('a'), await upstream('b'), await upstream('c')];
    const dir = mkdtempSync(join(tmpdir(), 'mcgravity-workers-'));
    const file = join(dir, 'proxy.yaml');
    const text = (ports: number[]) => `global: { metrics_port: 0, admin_token: ${TOKEN} }
clusters:
  web:
    load_balancing: round_robin
    backends: [${ports.map((p) => `{ address: "127.0.0.1:${p}" }`).join(', ')}]
listeners:
  - { name: web, address: "127.0.0.1:0", cluster: web }
`;
    writeFileSync(file, text([a.port, b.port]));
    const proxy = await start(file, ['--workers', '2']);
    const { web, admin } = proxy.urls as { web: string; admin: string };
    const serving = proxy.log.filter((e) => /^worker \d serving$/.test(String(e.msg)));
    expect(new Set(serving.map((e) => e.workerPid)).size).toBe(2);

    expect((await answers(web, 200)).sort().filter((x, i, all) => all.indexOf(x) === i)).toEqual(['a', 'b']);
    // Both workers took connections, and the primary adds up what both report.
    await within(() => a.requests.length + b.requests.length >= 200, 5_000, 'all requests seen');
    const perf = async () =>
      (await (await request(`${admin}/api/v1/metrics/performance`)).body.json()) as {
        clusters: { web: { requests: number } };
      };
    await within(async () => (await perf()).clusters.web.requests === 200, 5_000, 'the sum of both workers');
    const metrics = await (await request(`${admin}/metrics`)).body.text();
    const counts = [
      ...metrics.matchAll(/^mcgravity_requests_total\{cluster="web",endpoint="[^"]+"\} (\d+)$/gm),
    ];
    expect(counts).toHaveLength(2);
    expect(counts.reduce((sum, m) => sum + Number(m[1]), 0)).toBe(200);

    // An admin change reaches both workers: no request goes to `a` afterwards, whoever serves it.
    const changed = await request(`${admin}/api/v1/clusters/web/backends/127.0.0.1:${a.port}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ weight: 0 }),
    });
    expect(await changed.body.json()).toMatchObject({ weight: 0 });
    await within(
      async () => {
        const backends = (await (await request(`${admin}/api/v1/clusters/web/backends`)).body.json()) as {
          backends: { weight: number }[];
        };
        return backends.backends[0]?.weight === 0;
      },
      5_000,
      'the change in both snapshots',
    );
    expect(new Set(await answers(web, 100))).toEqual(new Set(['b']));

    // SIGHUP reloads every worker: the file's backends, and weights, come back.
    writeFileSync(file, text([b.port, c.port]));
    proxy.child.kill('SIGHUP');
    await within(() => proxy.log.some((e) => e.msg === 'reloaded'), 10_000, 'the reload');
    expect(new Set(await answers(web, 100))).toEqual(new Set(['b', 'c']));

    // A worker that dies is replaced with the configuration in force.
    const victim = serving[0]?.workerPid as number;
    process.kill(victim, 'SIGKILL');
    await within(
      () => proxy.log.filter((e) => /^worker \d serving$/.test(String(e.msg))).length === 3,
      15_000,
      'a replacement worker',
    );
    expect(new Set(await answers(web, 100))).toEqual(new Set(['b', 'c']));

    proxy.child.kill('SIGTERM');
    expect(await proxy.exited).toBe(0);
  });

  it('workers log at the level the file sets (they logged at info whatever it said)', async () => {
    const a = await upstream('a');
    const port = await closedPort();
    const dir = mkdtempSync(join(tmpdir(), 'mcgravity-workers-'));
    const file = join(dir, 'proxy.yaml');
    writeFileSync(
      file,
      `global: { log_level: warn, metrics_port: 0 }
clusters: { web: { backends: [{ address: "127.0.0.1:${a.port}" }] } }
listeners: [{ name: web, address: "127.0.0.1:${port}", cluster: web }]
`,
    );
    const child = spawn(process.execPath, [...CLI, '--config', file, '--workers', '2'], {
      cwd: root,
      env: { ...process.env, MCGRAVITY_AFFINITY_SECRET: 'test-affinity-secret-0123' },
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    defer(async () => {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
    });
    // Nothing is logged at warn when all is well, so readiness is the listener answering.
    await within(
      async () => {
        try {
          return (await (await request(`http://127.0.0.1:${port}/`)).body.text()) === 'a';
        } catch {
          return false;
        }
      },
      15_000,
      'the workers serving',
    );
    await answers(`http://127.0.0.1:${port}`, 20);
    child.kill('SIGTERM');
    await exited;
    const below = stderr
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as { level: number; msg: string })
      .filter((entry) => entry.level < 40);
    expect(below).toEqual([]);
  });
});
