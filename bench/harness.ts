/**
 * Shared benchmark machinery: timing loops compiled per case (so each case gets its own monomorphic
 * call site, and an earlier case cannot slow a later one), allocation checks, and table printing.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { fileURLToPath } from 'node:url';

declare const gc: (() => void) | undefined;

/** One measured case. */
export interface Measurement {
  /** Median nanoseconds per operation over the rounds. */
  nsPerOp: number;
  /**
   * Heap growth over one round, from a collected heap, in bytes. The bench runs with a young
   * generation large enough that a round's garbage stays in it, so this is what the round allocated.
   */
  heapGrowth: number;
}

/**
 * Times `body` (a statement using `target`, `ctx` and loop index `i`) over `ops` iterations, in a
 * function compiled for this case alone. Returns the median of `rounds` timed rounds, after warm-up.
 */
export function measure(
  body: string,
  target: unknown,
  ctx: unknown,
  options: { ops?: number; rounds?: number } = {},
): Measurement {
  const ops = options.ops ?? 1_000_000;
  const rounds = options.rounds ?? 5;
  const loop = new Function(
    'target',
    'ctx',
    'ops',
    `let sink = 0;
     for (let i = 0; i < ops; i++) { const r = ${body}; if (r === undefined) sink++; }
     return sink;`,
  ) as (target: unknown, ctx: unknown, ops: number) => number;
  loop(target, ctx, Math.min(ops, 200_000)); // warm-up: reach optimised code
  const times: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const start = process.hrtime.bigint();
    const misses = loop(target, ctx, ops);
    const elapsed = Number(process.hrtime.bigint() - start);
    if (misses > 0) throw new Error(`benchmark body returned undefined ${misses} times: ${body}`);
    times.push(elapsed / ops);
  }
  times.sort((a, b) => a - b);
  const heapGrowth = heapGrowthOf(() => loop(target, ctx, ops));
  return { nsPerOp: times[Math.floor(times.length / 2)] as number, heapGrowth };
}

/** Heap growth during `run`, starting from a collected heap when `--expose-gc` is on. */
export function heapGrowthOf(run: () => void): number {
  if (typeof gc === 'function') gc();
  const before = process.memoryUsage().heapUsed;
  run();
  return process.memoryUsage().heapUsed - before;
}

/** Prints a Markdown table (it reads well in a terminal and pastes into docs/benchmarks.md). */
export function printTable(
  title: string,
  header: readonly string[],
  rows: readonly (readonly string[])[],
): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((row) => (row[c] ?? '').length)));
  const line = (cells: readonly string[]) =>
    `| ${cells.map((cell, c) => (c === 0 ? cell.padEnd(widths[c] as number) : cell.padStart(widths[c] as number))).join(' | ')} |`;
  const text = [
    `### ${title}`,
    '',
    line(header),
    `| ${widths.map((w, c) => (c === 0 ? '-'.repeat(w) : `${'-'.repeat(w - 1)}:`)).join(' | ')} |`,
    ...rows.map(line),
    '',
  ].join('\n');
  console.log(text);
  return text;
}

/** Formats nanoseconds. */
export function ns(value: number): string {
  return value < 10 ? value.toFixed(2) : value < 100 ? value.toFixed(1) : value.toFixed(0);
}

/** Formats bytes. */
export function bytes(value: number): string {
  const abs = Math.abs(value);
  if (abs < 1024) return `${value} B`;
  if (abs < 1024 * 1024) return `${(value / 1024).toFixed(1)} KiB`;
  return `${(value / 1024 / 1024).toFixed(1)} MiB`;
}

/** A line that says where and when the numbers were taken. */
export function machineLine(): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  return `${new Date().toISOString().slice(0, 10)} · Node ${process.version} · ${cpu} × ${os.cpus().length} · ${Math.round(os.totalmem() / 2 ** 30)} GiB`;
}

const CASE_FLAG = '--bench-case';

/**
 * Runs case `index` of `suite` in a child process (same Node flags) and returns what the case
 * returned. The child loads `moduleUrl`, whose {@link registerCases} call answers it.
 */
export function runIsolated(moduleUrl: string, suite: string, index: number): unknown {
  const output = execFileSync(
    process.execPath,
    [...process.execArgv, fileURLToPath(moduleUrl), CASE_FLAG, `${suite}:${index}`],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 16 * 1024 * 1024 },
  );
  process.stderr.write('.');
  const last = output.trim().split('\n').pop() ?? '';
  return JSON.parse(last);
}

/** In a child started by {@link runIsolated}: runs the requested case, prints its result as JSON, exits. */
export function registerCases(suite: string, run: (index: number) => unknown): void {
  const at = process.argv.indexOf(CASE_FLAG);
  if (at === -1) return;
  const [wanted, index] = (process.argv[at + 1] ?? '').split(':');
  if (wanted !== suite) return;
  Promise.resolve(run(Number(index))).then(
    (result) => {
      process.stdout.write(`${JSON.stringify(result)}\n`);
      process.exit(0);
    },
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}

/**
 * Starts `script` (TypeScript, under tsx) with `args` in its own process and resolves with the first
 * line it prints that starts with `PORT` (`PORT <n>` or `PORTS <n> <n>…`), once it is ready.
 */
export function spawnTarget(script: string, args: string[]): Promise<{ child: ChildProcess; line: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
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

/** The median of `values` (the mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** A free port on 127.0.0.1 (closed again: the caller's process listens on it). */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** A process and its descendants, from /proc: each one's pid with the CPU it used so far, in ticks. */
function processTree(root: number): Map<number, number> {
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
  const tree = new Map<number, number>();
  for (const [pid, own] of ticks) {
    for (let p: number | undefined = pid; p !== undefined && p > 1; p = parents.get(p)) {
      if (p === root) {
        tree.set(pid, own);
        break;
      }
    }
  }
  return tree;
}

/**
 * CPU time (user + system, in clock ticks of 10 ms) used so far by a process and its descendants,
 * from /proc: what a proxy spent, however busy the machine's other core was.
 */
export function treeCpuTicks(root: number): number {
  let total = 0;
  for (const ticks of processTree(root).values()) total += ticks;
  return total;
}

/**
 * Pins every thread of a process and of its descendants to `cores` (a taskset list, "1" or "0-1"),
 * so that the processes a benchmark compares run on a core of their own rather than wherever the
 * scheduler puts them next to the load generator. False when taskset is missing or refused.
 */
export function pinTree(root: number, cores: string): boolean {
  for (const pid of processTree(root).keys()) {
    const taskset = spawnSync('taskset', ['-a', '-cp', cores, String(pid)], { stdio: 'ignore' });
    if (taskset.status !== 0) return false;
  }
  return true;
}
