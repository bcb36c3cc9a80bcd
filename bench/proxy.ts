/**
 * Proxy throughput and latency with autocannon, all in one run against the same two upstreams:
 * direct to one upstream (the ceiling), mcgravity, http-proxy (with a keep-alive agent),
 * @fastify/reply-from, and nginx when it is installed (keepalive upstream). Each proxy runs in its
 * own process; the upstreams in another; autocannon in this one. 32 connections, a 2 s warm-up,
 * then 8 s measured. Besides throughput and latency it reports the CPU time each proxy process (with
 * its children, for nginx) spent per request, which the sharing of two cores disturbs far less, and
 * latency percentiles in microseconds from a second, 4 s closed-loop run of our own.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { Pool } from 'undici';
import { printTable } from './harness.js';

const TARGETS = fileURLToPath(new URL('./proxyTargets.ts', import.meta.url));
const CONNECTIONS = 32;
const WARMUP_S = 2;
const DURATION_S = 8;
const LATENCY_S = 4;

/**
 * Latency percentiles in microseconds (autocannon reports whole milliseconds, too coarse to tell
 * the Node proxies apart): a closed loop of CONNECTIONS workers on one undici pool for `seconds`,
 * each request timed with hrtime.
 */
async function fineLatency(url: string, seconds: number): Promise<{ p50: number; p99: number }> {
  const pool = new Pool(new URL(url).origin, { connections: CONNECTIONS });
  const samples: number[] = [];
  const deadline = performance.now() + seconds * 1000;
  const worker = async () => {
    while (performance.now() < deadline) {
      const start = process.hrtime.bigint();
      const response = await pool.request({ method: 'GET', path: '/' });
      await response.body.dump();
      samples.push(Number(process.hrtime.bigint() - start) / 1000);
    }
  };
  await Promise.all(Array.from({ length: CONNECTIONS }, worker));
  await pool.close();
  samples.sort((a, b) => a - b);
  const at = (q: number) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] ?? 0;
  return { p50: at(0.5), p99: at(0.99) };
}

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
  const results: [string, autocannon.Result, number | undefined, { p50: number; p99: number }][] = [];
  try {
    const direct = `http://127.0.0.1:${ports[0]}/`;
    await load(direct, WARMUP_S);
    results.push([
      'direct (one upstream)',
      await load(direct, DURATION_S),
      undefined,
      await fineLatency(direct, LATENCY_S),
    ]);
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
        results.push([
          kind,
          result,
          (cpuMs * 1000) / Math.max(1, result.requests.total),
          await fineLatency(url, LATENCY_S),
        ]);
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
  const rows = results.map(([name, r, cpuUs, fine]) => [
    name === 'mcgravity' ? name : `_${name}_`,
    Math.round(r.requests.average).toLocaleString('en'),
    `${(r.requests.average / baseline).toFixed(2)}×`,
    fine.p50.toFixed(0),
    fine.p99.toFixed(0),
    cpuUs === undefined ? '–' : cpuUs.toFixed(0),
    String(r.errors + r.non2xx),
  ]);
  return printTable(
    `Proxy: autocannon, ${CONNECTIONS} connections, ${DURATION_S} s after a ${WARMUP_S} s warm-up, 2 upstreams (nginx ${nginx ? 'included' : 'not installed'})`,
    ['target', 'req/s', 'vs direct', 'p50 µs', 'p99 µs', 'proxy CPU µs/req', 'errors'],
    rows,
  );
}
