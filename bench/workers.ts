/**
 * All cores: the mcgravity command (`dist/cli.js`, no access log) with 1 and 2 worker processes
 * (`--workers`), beside nginx with 1 and 2 worker processes when it is installed, in one run against
 * the same two upstreams: requests per second, latency, and CPU per request summed over each proxy's
 * processes (primary and workers). The turns interleave as in the proxy suite. On a machine with few
 * cores the load generator and the upstreams share them with the proxy, so the second worker shows
 * what a busy machine gives, not a doubling; the table says how many cores there were.
 */
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { median, printTable, spawnTarget } from './harness.js';
import { quantile, runRounds, startTargets, stopTargets, type Target, WORKLOADS } from './proxy.js';

const TARGETS = new URL('./proxyTargets.ts', import.meta.url).pathname;

/** Runs the workers benchmark and returns its table. */
export async function runWorkersBench(): Promise<string> {
  const upstream = await spawnTarget(TARGETS, ['upstream']);
  const ports = upstream.line.split(' ').slice(1).map(Number);
  const nginx = spawnSync('nginx', ['-v']).status === 0;
  if (!nginx)
    process.stderr.write('nginx is not installed: its rows are skipped (apt-get install nginx adds them)\n');
  const kinds = ['mcgravity-w1', 'mcgravity-w2', ...(nginx ? ['nginx', 'nginx-w2'] : [])];
  const work = WORKLOADS[0] as (typeof WORKLOADS)[number];
  let targets: Target[] = [];
  try {
    // One process each: a worker count, not a build, is compared here.
    targets = await startTargets(kinds, ports, 1);
    await runRounds(targets, [work]);
  } finally {
    stopTargets(targets);
    upstream.child.kill('SIGTERM');
  }
  const names: Record<string, string> = {
    'mcgravity-w1': 'mcgravity, 1 worker',
    'mcgravity-w2': 'mcgravity, 2 workers',
    nginx: 'nginx, 1 worker',
    'nginx-w2': 'nginx, 2 workers',
  };
  const single = (name: string) => targets.find((t) => t.name === name)?.samples.get(work.name) ?? [];
  const rows = targets.map((target) => {
    const samples = target.samples.get(work.name) ?? [];
    // Against the same proxy with one worker, per round.
    const one = single(target.name.startsWith('nginx') ? 'nginx' : 'mcgravity-w1');
    const gain = median(samples.map((s, round) => s.rps / (one[round]?.rps ?? Number.NaN)));
    const latencies = samples.flatMap((s) => s.latencies).sort((a, b) => a - b);
    return [
      names[target.name] ?? target.name,
      Math.round(median(samples.map((s) => s.rps))).toLocaleString('en'),
      `${gain.toFixed(2)}×`,
      quantile(latencies, 0.5).toFixed(0),
      quantile(latencies, 0.99).toFixed(0),
      median(samples.map((s) => s.cpuUs ?? Number.NaN)).toFixed(0),
      String(samples.reduce((sum, s) => sum + s.errors, 0)),
    ];
  });
  return printTable(
    `Workers, GET: the command with 1 and 2 worker processes${nginx ? ', nginx with 1 and 2' : ' (nginx not installed)'}; ${work.rounds} interleaved rounds; ${os.cpus().length} cores shared with the load generator and the upstreams`,
    ['target', 'req/s', 'req/s vs 1 worker', 'p50 µs', 'p99 µs', 'CPU µs/req (all processes)', 'errors'],
    rows,
  );
}
