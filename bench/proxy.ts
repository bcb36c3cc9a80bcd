/**
 * Proxy throughput and latency with autocannon, all in one run against the same two upstreams:
 * direct to one upstream (the ceiling), mcgravity (createProxy with its defaults), `undici` (the
 * 30-line proxy a careful engineer writes with node:http and undici's Pool.stream(), the baseline of
 * the "CPU vs undici" column), the mcgravity command with a JSON access log (`mcgravity-cli`,
 * compared with createProxy for CPU per request), http-proxy and http-proxy-3 (with a keep-alive
 * agent), @fastify/reply-from, and nginx when it is installed (keepalive upstream). Each proxy runs in its
 * own process; the upstreams in another; autocannon in this one. 32 connections.
 *
 * These machines change speed by up to half over tens of seconds, so the targets are measured in
 * many short turns: twelve rounds in which every target gets 2 s of load, in an order shuffled anew
 * each round. Each proxy runs as three processes, warmed up 2 s each, which take the rounds in turn:
 * one process's JIT and heap luck lasts its lifetime, and would otherwise be the whole run's.
 * Ratios are taken per round (each target against http-proxy and direct measured moments apart) and
 * their medians reported, as are the medians of everything else; beside the median ratio of CPU per
 * request to the undici proxy's, the middle half of the rounds' ratios (first to third quartile)
 * shows how much one run's median can be trusted.
 * The order is shuffled, not rotated, because a turn's figures depend on the turn before it (after
 * the direct turn has run the upstreams hot, say): with a fixed rotation the same target always
 * follows the same one, and a build measured against itself came out 10 % apart.
 *
 * On a machine of two cores or more, with taskset, every proxy runs on core 1 and the load
 * generator and the upstreams on core 0 (nginx's rows too: the whole process tree is pinned).
 * Left to the scheduler, a proxy shares its core now with the load generator and now with the
 * upstreams, and its CPU per request moves by several percent with where it lands. Besides
 * throughput it reports the CPU time each proxy process (with its children, for nginx) spent per
 * request, and latency percentiles in microseconds from a 1 s closed-loop run of our own after each
 * turn, taken over the samples of all its turns together, and the median of the rounds' ratios of
 * p99 to the undici proxy's p99 in the same round. With `MCGRAVITY_BASELINE` set to another
 * build's `dist/index.js`, that build runs as one more target (`mcgravity-baseline`). Two rows run
 * only when `MCGRAVITY_BENCH_TARGETS` names them: `mcgravity-lean`, createProxy with every default
 * that can be turned off turned off, which prices those defaults against the same proxy without
 * them; and `undici-headers`, the undici proxy sending the headers mcgravity's defaults send
 * (`X-Forwarded-*` and a request id upstream, the request id back), which prices those bytes.
 */
import { type ChildProcess, spawnSync } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { Pool } from 'undici';
import { seededRandom } from '../test/helpers/random.js';
import { freePort, median, pinTree, printTable, spawnTarget, treeCpuTicks } from './harness.js';

const TARGETS = fileURLToPath(new URL('./proxyTargets.ts', import.meta.url));
const CONNECTIONS = 32;
const WARMUP_S = 2;
const DURATION_S = 2;
const LATENCY_S = 1;
/** Rounds of each workload; MCGRAVITY_BENCH_ROUNDS changes it. */
const ROUNDS = Number(process.env.MCGRAVITY_BENCH_ROUNDS ?? 12);
/**
 * Processes started per proxy, which take the rounds in turn; MCGRAVITY_BENCH_PROCESSES changes it.
 * A Node process keeps what its JIT and heap layout made of it for its whole life: the same build
 * in two processes side by side came out 8 % apart per POST for a whole run, with the middle halves
 * of their rounds not overlapping. One process per proxy makes that luck the run's verdict.
 */
export const PROCESSES = Number(process.env.MCGRAVITY_BENCH_PROCESSES ?? 3);
/**
 * The seed of the turn order, printed with the tables; MCGRAVITY_BENCH_SEED repeats a run's order.
 * Each run draws its own, so that recorded runs do not share one order's luck.
 */
export const ORDER_SEED = Number(process.env.MCGRAVITY_BENCH_SEED ?? Date.now() % 1_000_000);

/** What each turn sends: GETs, or POSTs of a 1 KiB body. */
export interface Workload {
  readonly name: string;
  readonly method: 'GET' | 'POST';
  readonly body: string | undefined;
  readonly rounds: number;
}

export const WORKLOADS: readonly Workload[] = [
  { name: 'GET', method: 'GET', body: undefined, rounds: ROUNDS },
  { name: 'POST 1 KiB', method: 'POST', body: 'x'.repeat(1024), rounds: ROUNDS },
];

/**
 * Latency percentiles in microseconds (autocannon reports whole milliseconds, too coarse to tell
 * the Node proxies apart): a closed loop of CONNECTIONS workers on one undici pool for `seconds`,
 * each request timed with hrtime.
 */
async function fineLatency(url: string, seconds: number, work: Workload): Promise<number[]> {
  const pool = new Pool(new URL(url).origin, { connections: CONNECTIONS });
  const samples: number[] = [];
  const deadline = performance.now() + seconds * 1000;
  const worker = async () => {
    while (performance.now() < deadline) {
      const start = process.hrtime.bigint();
      const response = await pool.request({
        method: work.method,
        path: '/',
        ...(work.body === undefined ? {} : { body: work.body, headers: { 'content-type': 'text/plain' } }),
      });
      await response.body.dump();
      samples.push(Number(process.hrtime.bigint() - start) / 1000);
    }
  };
  await Promise.all(Array.from({ length: CONNECTIONS }, worker));
  await pool.close();
  return samples;
}

/** A ratio as `1.23×`, or a dash when a row it divides by was not measured. */
function times(ratio: number): string {
  return Number.isNaN(ratio) ? '–' : `${ratio.toFixed(2)}×`;
}

/** The value at quantile `q` of `sorted`. */
export function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
}

function start(args: string[]): Promise<{ child: ChildProcess; line: string }> {
  return spawnTarget(TARGETS, args);
}

async function load(
  url: string,
  duration: number,
  work: Workload = WORKLOADS[0] as Workload,
): Promise<autocannon.Result> {
  return autocannon({
    url,
    connections: CONNECTIONS,
    duration,
    pipelining: 1,
    method: work.method,
    ...(work.body === undefined ? {} : { body: work.body, headers: { 'content-type': 'text/plain' } }),
  });
}

export interface Sample {
  readonly rps: number;
  readonly errors: number;
  readonly cpuUs: number | undefined;
  /** Latencies of the closed-loop run, in microseconds. */
  readonly latencies: number[];
}

/** One turn of a target: autocannon with the CPU the target spent, then fine latency. */
async function measure(url: string, pid: number | undefined, work: Workload): Promise<Sample> {
  const before = pid === undefined ? 0 : treeCpuTicks(pid);
  const result = await load(url, DURATION_S, work);
  const cpuMs = pid === undefined ? 0 : (treeCpuTicks(pid) - before) * 10;
  const latencies = await fineLatency(url, LATENCY_S, work);
  return {
    rps: result.requests.total / DURATION_S,
    errors: result.errors + result.non2xx,
    cpuUs: pid === undefined ? undefined : (cpuMs * 1000) / Math.max(1, result.requests.total),
    latencies,
  };
}

/** One process of a target (none for the upstream itself, which the upstreams' process serves). */
export interface Instance {
  readonly url: string;
  readonly child?: ChildProcess;
}

/** A proxy (or the upstream itself) under test: its processes, and its samples per workload. */
export interface Target {
  readonly name: string;
  /** Round r runs on `instances[r % instances.length]`. */
  readonly instances: readonly Instance[];
  readonly samples: Map<string, Sample[]>;
}

/**
 * Starts `processes` processes per kind (bench/proxyTargets.ts roles) in front of the upstreams on
 * `ports`.
 */
export async function startTargets(
  kinds: readonly string[],
  ports: readonly number[],
  processes = PROCESSES,
): Promise<Target[]> {
  const targets: Target[] = [];
  for (const kind of kinds) {
    const instances: Instance[] = [];
    for (let i = 0; i < processes; i++) {
      // The command and nginx listen on a port chosen here; the others print theirs.
      const extra = /^(nginx|mcgravity-cli|mcgravity-w)/.test(kind) ? [String(await freePort())] : [];
      const started = await start([kind, ...ports.map(String), ...extra]);
      instances.push({ url: `http://127.0.0.1:${started.line.split(' ')[1]}/`, child: started.child });
    }
    targets.push({ name: kind, instances, samples: new Map() });
  }
  return targets;
}

/** Stops every process of `targets`. */
export function stopTargets(targets: readonly Target[]): void {
  for (const target of targets) for (const instance of target.instances) instance.child?.kill('SIGTERM');
}

/**
 * Every target runs for the whole benchmark (idle until its turn); after a warm-up of each of its
 * processes, rounds interleave the targets, each round in a new random order (from
 * {@link ORDER_SEED}), so that a slow spell of the shared machine falls on all of them and no target
 * always follows the same one. A target's processes take the rounds in turn.
 */
export async function runRounds(targets: readonly Target[], workloads: readonly Workload[]): Promise<void> {
  const random = seededRandom(ORDER_SEED);
  const order = [...targets];
  for (const target of targets) for (const instance of target.instances) await load(instance.url, WARMUP_S);
  for (const work of workloads) {
    for (let round = 0; round < work.rounds; round++) {
      shuffle(order, random);
      for (const target of order) {
        const samples = target.samples.get(work.name) ?? [];
        target.samples.set(work.name, samples);
        const instance = target.instances[round % target.instances.length] as Instance;
        samples.push(await measure(instance.url, instance.child?.pid, work));
        process.stderr.write('.');
      }
    }
  }
  process.stderr.write('\n');
}

/** Fisher–Yates, in place. */
function shuffle<T>(items: T[], random: () => number): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
}

/** Runs the proxy benchmark and returns its table. */
export async function runProxyBench(): Promise<string> {
  // This process (the load generator) and the upstreams it starts on core 0, the proxies on core 1.
  const pinned = os.cpus().length >= 2 && pinTree(process.pid, '0');
  if (!pinned) process.stderr.write('proxies not pinned to a core of their own (one core, or no taskset)\n');
  const upstream = await start(['upstream']);
  const ports = upstream.line.split(' ').slice(1).map(Number);
  const kinds = ['mcgravity', 'undici', 'mcgravity-cli', 'http-proxy', 'http-proxy-3', 'reply-from'];
  // Another build of mcgravity (MCGRAVITY_BASELINE=path/to/dist/index.js), to compare two versions
  // side by side in one run, as a change that must not cost throughput is measured.
  if (process.env.MCGRAVITY_BASELINE !== undefined) kinds.splice(1, 0, 'mcgravity-baseline');
  const nginx = spawnSync('nginx', ['-v']).status === 0;
  if (nginx) kinds.push('nginx');
  else process.stderr.write('nginx is not installed: its row is skipped (apt-get install nginx adds it)\n');
  // MCGRAVITY_BENCH_TARGETS=undici,mcgravity keeps only those rows (and direct), for a quick look at
  // one change; the ratio columns need the rows they divide by.
  const only = process.env.MCGRAVITY_BENCH_TARGETS?.split(',');
  if (only !== undefined) {
    const named = [...kinds, 'mcgravity-lean', 'undici-headers'].filter((kind) => only.includes(kind));
    kinds.splice(0, kinds.length, ...named);
  }
  const targets: Target[] = [
    {
      name: 'direct (one upstream)',
      instances: [{ url: `http://127.0.0.1:${ports[0]}/` }],
      samples: new Map(),
    },
  ];
  try {
    targets.push(...(await startTargets(kinds, ports)));
    for (const target of targets)
      for (const { child } of target.instances)
        if (pinned && child?.pid !== undefined) pinTree(child.pid, '1');
    await runRounds(targets, WORKLOADS);
  } finally {
    stopTargets(targets);
    upstream.child.kill('SIGTERM');
    // The suites after this one (workers) want every core.
    if (pinned) pinTree(process.pid, `0-${os.cpus().length - 1}`);
  }
  process.stderr.write('\n');
  const tables = WORKLOADS.map(
    (work) => `${tableOf(work, targets, nginx, pinned)}${perProcess(work, targets)}`,
  );
  // The command with its access log against the library without one: CPU per request, per round.
  const samplesOf = (name: string) => targets.find((t) => t.name === name)?.samples.get('GET') ?? [];
  const cliRatio = median(
    samplesOf('mcgravity-cli').map(
      (sample, round) => (sample.cpuUs ?? Number.NaN) / (samplesOf('mcgravity')[round]?.cpuUs ?? Number.NaN),
    ),
  );
  const line = Number.isNaN(cliRatio)
    ? ''
    : `mcgravity-cli (the command, JSON access log to a file) spends ${cliRatio.toFixed(2)}× the CPU per request of mcgravity (createProxy, no log), GET; median of per-round ratios.\n`;
  console.log(line);
  return `${tables.join('\n')}\n${line}`;
}

/**
 * Each proxy's CPU per request process by process (the median of the rounds each one took), which
 * the table's medians hide. A process that stays dearer than its siblings would show here, but so
 * do the machine's slow spells its few turns fell in: the line cannot tell the two apart.
 */
function perProcess(work: Workload, targets: readonly Target[]): string {
  const parts: string[] = [];
  for (const target of targets) {
    const processes = target.instances.length;
    if (processes < 2) continue;
    const samples = target.samples.get(work.name) ?? [];
    const medians: string[] = [];
    for (let i = 0; i < processes; i++) {
      const cpu = samples
        .filter((_, round) => round % processes === i)
        .map((sample) => sample.cpuUs)
        .filter((value): value is number => value !== undefined);
      medians.push(cpu.length === 0 ? '–' : median(cpu).toFixed(0));
    }
    parts.push(`${target.name} ${medians.join(' / ')}`);
  }
  if (parts.length === 0) return '';
  const line = `${work.name}, CPU µs/req of each process (the median of its rounds): ${parts.join('; ')}.\n`;
  console.log(line);
  return `${line}\n`;
}

/** The table of one workload: every target's rows, with ratios per round. */
function tableOf(
  work: Workload,
  targets: readonly { name: string; samples: Map<string, Sample[]> }[],
  nginx: boolean,
  pinned: boolean,
): string {
  const samplesOf = (name: string) => targets.find((t) => t.name === name)?.samples.get(work.name) ?? [];
  // A ratio per round, between turns moments apart, then the median: slow spells cancel out.
  const ratio = (own: readonly Sample[], base: readonly Sample[]) =>
    median(own.map((sample, round) => sample.rps / (base[round]?.rps ?? Number.NaN)));
  const direct = samplesOf('direct (one upstream)');
  const httpProxy = samplesOf('http-proxy');
  const handWritten = samplesOf('undici');
  // CPU per request against the hand-written undici proxy, per round: the median, and the middle
  // half of the rounds (first to third quartile), which says how far a median of this run can be
  // trusted to tell a few percent apart.
  const cpuRatios = (own: readonly Sample[]) =>
    own
      .map((sample, round) => (sample.cpuUs ?? Number.NaN) / (handWritten[round]?.cpuUs ?? Number.NaN))
      .filter((value) => !Number.isNaN(value))
      .sort((a, b) => a - b);
  // The p99 of each round's closed-loop run against the undici proxy's in the same round, then the
  // median: the pooled p99 beside it is decided by whichever rounds fell in a slow spell.
  const p99Of = (sample: Sample | undefined) =>
    sample === undefined || sample.latencies.length === 0
      ? Number.NaN
      : quantile(
          [...sample.latencies].sort((a, b) => a - b),
          0.99,
        );
  const handWrittenP99 = handWritten.map(p99Of);
  const p99Ratio = (own: readonly Sample[]) =>
    median(
      own
        .map((sample, round) => p99Of(sample) / (handWrittenP99[round] ?? Number.NaN))
        .filter((value) => !Number.isNaN(value)),
    );
  const rows = targets.map(({ name }) => {
    const samples = samplesOf(name);
    const cpu = samples.map((s) => s.cpuUs).filter((v): v is number => v !== undefined);
    // Latency percentiles over every turn's samples together: a p99 of one short turn rests on a few
    // dozen requests, of all the rounds on thousands.
    const latencies = samples.flatMap((s) => s.latencies).sort((a, b) => a - b);
    const ratios = cpuRatios(samples);
    return [
      name === 'mcgravity' ? name : `_${name}_`,
      Math.round(median(samples.map((s) => s.rps))).toLocaleString('en'),
      times(ratio(samples, direct)),
      times(ratio(samples, httpProxy)),
      quantile(latencies, 0.5).toFixed(0),
      quantile(latencies, 0.99).toFixed(0),
      times(p99Ratio(samples)),
      cpu.length === 0 ? '–' : median(cpu).toFixed(0),
      ratios.length === 0 ? '–' : times(median(ratios)),
      ratios.length < 4 ? '–' : `${quantile(ratios, 0.25).toFixed(2)}–${quantile(ratios, 0.75).toFixed(2)}×`,
      String(samples.reduce((sum, s) => sum + s.errors, 0)),
    ];
  });
  return printTable(
    `Proxy, ${work.name}: autocannon, ${CONNECTIONS} connections, ${work.rounds} rounds of ${DURATION_S} s per target in shuffled order (seed ${ORDER_SEED}), taken in turn by ${PROCESSES} processes per proxy, each after a ${WARMUP_S} s warm-up; medians, ratios per round; 2 upstreams (nginx ${nginx ? 'included' : 'not installed'}); ${pinned ? 'proxies on core 1, load generator and upstreams on core 0' : 'not pinned to cores'}`,
    [
      'target',
      'req/s',
      'vs direct',
      'vs http-proxy',
      'p50 µs',
      'p99 µs',
      'p99 vs undici',
      'proxy CPU µs/req',
      'CPU vs undici',
      'middle half',
      'errors',
    ],
    rows,
  );
}
