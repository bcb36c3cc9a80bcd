/**
 * MCP tool calls, all in one run against the same replicas (stateful replicas of the SDK's McpServer,
 * one process per answer style): direct to one replica (the ceiling), through mcgravity's proxy with
 * `sessionAffinity: 'mcp'` (its own process), for answers as SSE streams (the SDK's default) and as
 * JSON bodies, and with `createMcpFetch` in this process over the SSE replicas. Each target: SESSIONS
 * SDK clients (sessions) in this process calling a trivial tool in a closed loop, a 1 s warm-up then
 * DURATION_S measured; rounds interleaved, medians reported.
 *
 * Besides calls per second it reports what one call costs in CPU: the proxy's process (the hop), the
 * replicas' process (the SDK's server side with node:http), and this process (the SDK's client side,
 * with createMcpFetch's own work in its row).
 */
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { median, printTable, spawnTarget, treeCpuTicks } from './harness.js';

const TARGETS = fileURLToPath(new URL('./mcpTargets.ts', import.meta.url));
const SESSIONS = 16;
const WARMUP_S = 1;
const DURATION_S = 4;
const ROUNDS = 3;

type Fetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

interface Sample {
  readonly callsPerSecond: number;
  readonly p50: number;
  readonly p99: number;
  readonly errors: number;
  /** CPU µs per call: the proxy's process, the replicas' process, this process (the clients). */
  readonly proxyCpu: number | undefined;
  readonly serverCpu: number;
  readonly clientCpu: number;
}

/** Opens the sessions, warms up, then counts tool calls for DURATION_S with the CPU each side spent. */
async function measure(
  url: string,
  fetch: Fetch | undefined,
  proxyPid: number | undefined,
  replicasPid: number,
): Promise<Sample> {
  const clients = await Promise.all(
    Array.from({ length: SESSIONS }, async () => {
      const transport = new StreamableHTTPClientTransport(new URL(url), fetch === undefined ? {} : { fetch });
      const client = new Client({ name: 'bench', version: '1.0.0' });
      await client.connect(transport);
      return client;
    }),
  );
  const samples: number[] = [];
  let errors = 0;
  const loop = async (client: Client, until: number, record: boolean) => {
    while (performance.now() < until) {
      const started = performance.now();
      try {
        await client.callTool({ name: 'whoami', arguments: {} });
        if (record) samples.push(performance.now() - started);
      } catch {
        errors++;
      }
    }
  };
  const warm = performance.now() + WARMUP_S * 1000;
  await Promise.all(clients.map((client) => loop(client, warm, false)));
  errors = 0;
  const proxyBefore = proxyPid === undefined ? 0 : treeCpuTicks(proxyPid);
  const serverBefore = treeCpuTicks(replicasPid);
  const clientBefore = process.cpuUsage();
  const began = performance.now();
  const end = began + DURATION_S * 1000;
  await Promise.all(clients.map((client) => loop(client, end, true)));
  const elapsed = (performance.now() - began) / 1000;
  const client = process.cpuUsage(clientBefore);
  const calls = Math.max(1, samples.length);
  // Clock ticks are 10 ms.
  const perCall = (ticks: number) => (ticks * 10_000) / calls;
  const sample: Sample = {
    callsPerSecond: samples.length / elapsed,
    p50: 0,
    p99: 0,
    errors,
    proxyCpu: proxyPid === undefined ? undefined : perCall(treeCpuTicks(proxyPid) - proxyBefore),
    serverCpu: perCall(treeCpuTicks(replicasPid) - serverBefore),
    clientCpu: (client.user + client.system) / calls,
  };
  await Promise.all(clients.map((c) => c.close()));
  samples.sort((a, b) => a - b);
  const at = (q: number) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] ?? 0;
  return { ...sample, p50: at(0.5), p99: at(0.99) };
}

/** Runs the MCP benchmark and returns its table. */
export async function runMcpBench(): Promise<string> {
  const children: ChildProcess[] = [];
  const closers: (() => Promise<unknown>)[] = [];
  try {
    // One replica set per answer style, each with a proxy of its own.
    const sets = [];
    for (const style of ['SSE', 'JSON'] as const) {
      const replicas = await spawnTarget(TARGETS, ['replicas', '3', ...(style === 'JSON' ? ['json'] : [])]);
      children.push(replicas.child);
      const ports = replicas.line.split(' ').slice(1);
      const proxy = await spawnTarget(TARGETS, ['proxy', ...ports]);
      children.push(proxy.child);
      sets.push({ style, ports, replicas: replicas.child, proxy });
    }
    const sse = sets[0] as (typeof sets)[number];
    const dist = new URL('../dist/', import.meta.url).href;
    const { createCluster } = (await import(`${dist}index.js`)) as typeof import('../src/index.js');
    const { createMcpFetch } = (await import(`${dist}mcp.js`)) as typeof import('../src/mcp/index.js');
    const cluster = createCluster({
      backends: sse.ports.map((port, i) => ({
        url: `http://127.0.0.1:${port}`,
        id: String.fromCharCode(97 + i),
      })),
      health: false,
    });
    closers.push(() => cluster.close());
    const mcpFetch = createMcpFetch(cluster);
    interface Target {
      name: string;
      url: string;
      style: 'SSE' | 'JSON';
      fetch?: Fetch;
      proxyPid?: number;
      replicasPid: number;
      samples: Sample[];
    }
    const targets: Target[] = sets.flatMap(({ style, ports, replicas, proxy }): Target[] => [
      {
        name: `direct (one replica), ${style}`,
        url: `http://127.0.0.1:${ports[0]}/mcp`,
        style,
        replicasPid: replicas.pid as number,
        samples: [],
      },
      {
        name: `mcgravity proxy (3 replicas), ${style}`,
        url: `http://127.0.0.1:${proxy.line.split(' ')[1]}/mcp`,
        style,
        proxyPid: proxy.child.pid as number,
        replicasPid: replicas.pid as number,
        samples: [],
      },
    ]);
    targets.push({
      name: 'createMcpFetch (3 replicas), SSE',
      url: 'http://mcp.invalid/mcp',
      style: 'SSE',
      fetch: mcpFetch,
      replicasPid: sse.replicas.pid as number,
      samples: [],
    });
    for (let round = 0; round < ROUNDS; round++) {
      for (let i = 0; i < targets.length; i++) {
        const target = targets[(i + round) % targets.length] as Target;
        target.samples.push(await measure(target.url, target.fetch, target.proxyPid, target.replicasPid));
        process.stderr.write('.');
      }
    }
    process.stderr.write('\n');
    const rows = targets.map(({ name, style, samples }) => {
      const direct = median(
        targets
          .find((t) => t.style === style && t.name.startsWith('direct'))
          ?.samples.map((s) => s.callsPerSecond) ?? [],
      );
      const rate = median(samples.map((s) => s.callsPerSecond));
      const proxyCpu = samples.map((s) => s.proxyCpu).filter((v): v is number => v !== undefined);
      return [
        name.startsWith('direct') ? `_${name}_` : name,
        Math.round(rate).toLocaleString('en'),
        `${(rate / direct).toFixed(2)}×`,
        median(samples.map((s) => s.p50)).toFixed(2),
        median(samples.map((s) => s.p99)).toFixed(2),
        proxyCpu.length === 0 ? '–' : median(proxyCpu).toFixed(0),
        median(samples.map((s) => s.serverCpu)).toFixed(0),
        median(samples.map((s) => s.clientCpu)).toFixed(0),
        String(samples.reduce((sum, s) => sum + s.errors, 0)),
      ];
    });
    return printTable(
      `MCP: tools/call with the SDK client, ${SESSIONS} sessions, answers as SSE streams and as JSON bodies; medians of ${ROUNDS} interleaved rounds of ${DURATION_S} s; CPU in µs per call`,
      [
        'target',
        'calls/s',
        'vs direct',
        'p50 ms',
        'p99 ms',
        'proxy CPU',
        'server SDK CPU (replicas)',
        'client SDK CPU',
        'errors',
      ],
      rows,
    );
  } finally {
    for (const close of closers) await close();
    for (const child of children) child.kill('SIGTERM');
  }
}
