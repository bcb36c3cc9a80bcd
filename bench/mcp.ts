/**
 * MCP tool calls per second, all in one run against the same replicas (three stateful replicas of
 * the SDK's McpServer in one process): direct to one replica (the ceiling), through mcgravity's proxy
 * with `sessionAffinity: 'mcp'` (its own process), and with `createMcpFetch` in this process over the
 * three replicas. Each target: SESSIONS SDK clients (sessions) in this process calling a trivial tool
 * in a closed loop, a 1 s warm-up then DURATION_S measured; two rounds, interleaved, medians reported.
 */
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { median, printTable, spawnTarget } from './harness.js';

const TARGETS = fileURLToPath(new URL('./mcpTargets.ts', import.meta.url));
const SESSIONS = 16;
const WARMUP_S = 1;
const DURATION_S = 5;
const ROUNDS = 2;

type Fetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

interface Sample {
  readonly callsPerSecond: number;
  readonly p50: number;
  readonly p99: number;
  readonly errors: number;
}

/** Opens the sessions, warms up, then counts tool calls for DURATION_S. */
async function measure(url: string, fetch: Fetch | undefined): Promise<Sample> {
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
  const began = performance.now();
  const end = began + DURATION_S * 1000;
  await Promise.all(clients.map((client) => loop(client, end, true)));
  const elapsed = (performance.now() - began) / 1000;
  await Promise.all(clients.map((client) => client.close()));
  samples.sort((a, b) => a - b);
  const at = (q: number) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] ?? 0;
  return { callsPerSecond: samples.length / elapsed, p50: at(0.5), p99: at(0.99), errors };
}

/** Runs the MCP benchmark and returns its table. */
export async function runMcpBench(): Promise<string> {
  const children: ChildProcess[] = [];
  const closers: (() => Promise<unknown>)[] = [];
  try {
    const replicas = await spawnTarget(TARGETS, ['replicas', '3']);
    children.push(replicas.child);
    const ports = replicas.line.split(' ').slice(1);
    const proxy = await spawnTarget(TARGETS, ['proxy', ...ports]);
    children.push(proxy.child);
    const dist = new URL('../dist/', import.meta.url).href;
    const { createCluster } = (await import(`${dist}index.js`)) as typeof import('../src/index.js');
    const { createMcpFetch } = (await import(`${dist}mcp.js`)) as typeof import('../src/mcp/index.js');
    const cluster = createCluster({
      backends: ports.map((port, i) => ({
        url: `http://127.0.0.1:${port}`,
        id: String.fromCharCode(97 + i),
      })),
      health: false,
    });
    closers.push(() => cluster.close());
    const mcpFetch = createMcpFetch(cluster);
    const targets: { name: string; url: string; fetch?: Fetch; samples: Sample[] }[] = [
      { name: 'direct (one replica)', url: `http://127.0.0.1:${ports[0]}/mcp`, samples: [] },
      {
        name: 'mcgravity proxy (3 replicas)',
        url: `http://127.0.0.1:${proxy.line.split(' ')[1]}/mcp`,
        samples: [],
      },
      { name: 'createMcpFetch (3 replicas)', url: 'http://mcp.invalid/mcp', fetch: mcpFetch, samples: [] },
    ];
    for (let round = 0; round < ROUNDS; round++) {
      for (let i = 0; i < targets.length; i++) {
        const target = targets[(i + round) % targets.length] as (typeof targets)[number];
        target.samples.push(await measure(target.url, target.fetch));
        process.stderr.write('.');
      }
    }
    process.stderr.write('\n');
    const direct = median(targets[0]?.samples.map((s) => s.callsPerSecond) ?? []);
    const rows = targets.map(({ name, samples }) => {
      const rate = median(samples.map((s) => s.callsPerSecond));
      return [
        name.startsWith('direct') ? `_${name}_` : name,
        Math.round(rate).toLocaleString('en'),
        `${(rate / direct).toFixed(2)}×`,
        median(samples.map((s) => s.p50)).toFixed(2),
        median(samples.map((s) => s.p99)).toFixed(2),
        String(samples.reduce((sum, s) => sum + s.errors, 0)),
      ];
    });
    return printTable(
      `MCP: tools/call with the SDK client, ${SESSIONS} sessions, medians of ${ROUNDS} interleaved rounds of ${DURATION_S} s`,
      ['target', 'calls/s', 'vs direct', 'p50 ms', 'p99 ms', 'errors'],
      rows,
    );
  } finally {
    for (const close of closers) await close();
    for (const child of children) child.kill('SIGTERM');
  }
}
