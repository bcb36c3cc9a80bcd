/**
 * Proxy throughput and latency with autocannon, all in one run against the same two upstreams:
 * direct to one upstream (the ceiling), mcgravity, http-proxy (with a keep-alive agent),
 * @fastify/reply-from, and nginx when it is installed (keepalive upstream). Each proxy runs in its
 * own process; the upstreams in another; autocannon in this one. 32 connections, a 2 s warm-up,
 * then 8 s measured.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
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
  const results: [string, autocannon.Result][] = [];
  try {
    const direct = `http://127.0.0.1:${ports[0]}/`;
    await load(direct, WARMUP_S);
    results.push(['direct (one upstream)', await load(direct, DURATION_S)]);
    process.stderr.write('.');
    for (const kind of kinds) {
      const extra = kind === 'nginx' ? [String(await freePort())] : [];
      const target = await start([kind, ...ports.map(String), ...extra]);
      try {
        const url = `http://127.0.0.1:${target.line.split(' ')[1]}/`;
        await load(url, WARMUP_S);
        results.push([kind, await load(url, DURATION_S)]);
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
  const rows = results.map(([name, r]) => [
    name === 'mcgravity' ? name : `_${name}_`,
    Math.round(r.requests.average).toLocaleString('en'),
    `${(r.requests.average / baseline).toFixed(2)}×`,
    String(r.latency.p50),
    String(r.latency.p99),
    String(r.errors + r.non2xx),
  ]);
  return printTable(
    `Proxy: autocannon, ${CONNECTIONS} connections, ${DURATION_S} s after a ${WARMUP_S} s warm-up, 2 upstreams (nginx ${nginx ? 'included' : 'not installed'})`,
    ['target', 'req/s', 'vs direct', 'p50 ms', 'p99 ms', 'errors'],
    rows,
  );
}
