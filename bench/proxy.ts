/**
 * Proxy throughput and latency with autocannon, all in one run against the same two upstreams:
 * direct to one upstream (the ceiling), mcgravity, http-proxy (with a keep-alive agent),
 * @fastify/reply-from, and nginx when it is installed (keepalive upstream). Each proxy runs in its
 * own process; the upstreams in another; autocannon in this one. 32 connections, a 2 s warm-up,
 * then 8 s measured. Besides throughput and latency it reports the CPU time each proxy process (with
 * its children, for nginx) spent per request, which the sharing of two cores disturbs far less.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { printTable } from './harness.js';

const TARGETS = fileURLToPath(new URL('./proxyTargets.ts', import.meta.url));
const CONNECTIONS = 32;
const WARMUP_S = 2;
const DURATION_S = 8;

function start(args: string[]): Promise<{ child: ChildProcess; line: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', TARGETS, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const line = out.split('\n').find((l) => l.startsWith('PORT'));
      if (line !== undefined) resolve({ child, line });
    });
    child.once('exit', (code) => reject(new Error(`${args[0]} exited with ${code}`)));
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * CPU time (user + system, in clock ticks of 10 ms) used so far by a process and its descendants,
 * from /proc: what a proxy spent, however busy the machine's other core was.
 */
function treeCpuTicks(root: number): number {
  const parents = new Map<number, number>();
  const ticks = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parents.set(Number(entry), Number(fields[1]));
      ticks.set(Number(entry), Number(fields[11]) + Number(fields[12]));
    } catch {
      // the process ended while we looked
    }
  }
  let total = 0;
  for (const [pid, own] of ticks) {
    for (let p: number | undefined = pid; p !== undefined && p > 1; p = parents.get(p)) {
      if (p === root) {
        total += own;
        break;
      }
    }
  }
  return total;
}

async function load(url: string, duration: number): Promise<autocannon.Result> {
  return autocannon({ url, connections: CONNECTIONS, duration, pipelining: 1 });
}

/** Runs the proxy benchmark and returns its table. */
export async function runProxyBench(): Promise<string> {
  const upstream = await start(['upstream']);
  const ports = upstream.line.split(' ').slice(1).map(Number);
  const kinds = ['mcgravity', 'http-proxy', 'reply-from'];
  const nginx = spawnSync('nginx', ['-v']).status === 0;
  if (nginx) kinds.push('nginx');
  const results: [string, autocannon.Result, number | undefined][] = [];
  try {
    const direct = `http://127.0.0.1:${ports[0]}/`;
    await load(direct, WARMUP_S);
    results.push(['direct (one upstream)', await load(direct, DURATION_S), undefined]);
    process.stderr.write('.');
    for (const kind of kinds) {
      const extra = kind === 'nginx' ? [String(await freePort())] : [];
      const target = await start([kind, ...ports.map(String), ...extra]);
      try {
        const url = `http://127.0.0.1:${target.line.split(' ')[1]}/`;
        await load(url, WARMUP_S);
        const before = treeCpuTicks(target.child.pid as number);
        const result = await load(url, DURATION_S);
        const cpuMs = (treeCpuTicks(target.child.pid as number) - before) * 10;
        results.push([kind, result, (cpuMs * 1000) / Math.max(1, result.requests.total)]);
      } finally {
        target.child.kill('SIGTERM');
      }
      process.stderr.write('.');
    }
  } finally {
    upstream.child.kill('SIGTERM');
  }
  process.stderr.write('\n');
  const baseline = results[0]?.[1].requests.average ?? 1;
  const rows = results.map(([name, r, cpuUs]) => [
    name === 'mcgravity' ? name : `_${name}_`,
    Math.round(r.requests.average).toLocaleString('en'),
    `${(r.requests.average / baseline).toFixed(2)}×`,
    String(r.latency.p50),
    String(r.latency.p99),
    cpuUs === undefined ? '–' : cpuUs.toFixed(0),
    String(r.errors + r.non2xx),
  ]);
  return printTable(
    `Proxy: autocannon, ${CONNECTIONS} connections, ${DURATION_S} s after a ${WARMUP_S} s warm-up, 2 upstreams (nginx ${nginx ? 'included' : 'not installed'})`,
    ['target', 'req/s', 'vs direct', 'p50 ms', 'p99 ms', 'proxy CPU µs/req', 'errors'],
    rows,
  );
}
