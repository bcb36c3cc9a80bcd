/**
 * `npm run bench protocols`: HTTP/2 and TCP through mcgravity, each beside its baseline in the same
 * run.
 *
 * - **HTTP/2.** One cluster of two upstreams behind two listeners of one proxy process: HTTP/1.1
 *   keep-alive (32 connections) and cleartext HTTP/2 (one connection, 100 concurrent streams), to
 *   HTTP/1.1 upstreams and, in a second proxy process, to h2c upstreams. Direct rows (to one upstream)
 *   give the ceiling of each client. The load generators are closed loops in this process: undici
 *   for HTTP/1.1, `node:http2` for HTTP/2.
 * - **TCP.** 256 MiB read from a source server over one connection, direct and through
 *   createTcpProxy.
 *
 * Targets take turns in rotating order over several rounds (these machines change speed over tens
 * of seconds), and each figure is the median of its rounds; CPU is what the proxy process spent.
 */
import type { ChildProcess } from 'node:child_process';
import http2 from 'node:http2';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { median, printTable, spawnTarget, treeCpuTicks } from './harness.js';

const TARGETS = fileURLToPath(new URL('./protocolTargets.ts', import.meta.url));
const H1_CONNECTIONS = 32;
const H2_STREAMS = 100;
const TURN_S = 2;
const ROUNDS = 6;
const TCP_ROUNDS = 4;
/** What the TCP source sends on each connection. */
const SOURCE_BYTES = 256 * 1024 * 1024;

type Client = 'http1' | 'http2';

/** Requests completed in `seconds` by a closed loop over HTTP/1.1 keep-alive connections. */
async function http1Load(port: number, seconds: number): Promise<number> {
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: H1_CONNECTIONS });
  let done = 0;
  const deadline = performance.now() + seconds * 1000;
  const worker = async () => {
    while (performance.now() < deadline) {
      const response = await pool.request({ method: 'GET', path: '/' });
      await response.body.dump();
      done++;
    }
  };
  await Promise.all(Array.from({ length: H1_CONNECTIONS }, worker));
  await pool.close();
  return done;
}

/** Requests completed in `seconds` by a closed loop of streams over one HTTP/2 connection. */
async function http2Load(port: number, seconds: number): Promise<number> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  await new Promise((resolve) => session.once('connect', resolve));
  let done = 0;
  const deadline = performance.now() + seconds * 1000;
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const stream = session.request({ ':path': '/' });
      stream.on('error', reject);
      stream.resume();
      stream.on('end', () => resolve());
    });
  const worker = async () => {
    while (performance.now() < deadline) {
      await one();
      done++;
    }
  };
  await Promise.all(Array.from({ length: H2_STREAMS }, worker));
  session.close();
  return done;
}

interface HttpTarget {
  readonly name: string;
  readonly client: Client;
  readonly port: number;
  readonly pid: number | undefined;
  readonly rps: number[];
  readonly cpuUs: number[];
}

async function turn(target: HttpTarget, seconds: number): Promise<void> {
  const before = target.pid === undefined ? 0 : treeCpuTicks(target.pid);
  const done =
    target.client === 'http1' ? await http1Load(target.port, seconds) : await http2Load(target.port, seconds);
  const cpuMs = target.pid === undefined ? 0 : (treeCpuTicks(target.pid) - before) * 10;
  target.rps.push(done / seconds);
  if (target.pid !== undefined) target.cpuUs.push((cpuMs * 1000) / Math.max(1, done));
}

async function httpBench(children: ChildProcess[]): Promise<string> {
  const spawn = async (args: string[]) => {
    const started = await spawnTarget(TARGETS, args);
    children.push(started.child);
    return { pid: started.child.pid, ports: started.line.split(' ').slice(1).map(Number) };
  };
  const h1Upstreams = await spawn(['upstream-h1']);
  const h2Upstreams = await spawn(['upstream-h2c']);
  const toH1 = await spawn(['mcgravity', 'h1', ...h1Upstreams.ports.map(String)]);
  const toH2 = await spawn(['mcgravity', 'h2c', ...h2Upstreams.ports.map(String)]);
  const target = (
    name: string,
    client: Client,
    port: number | undefined,
    pid: number | undefined,
  ): HttpTarget => ({
    name,
    client,
    port: port as number,
    pid,
    rps: [],
    cpuUs: [],
  });
  const targets = [
    target('direct, HTTP/1.1 (32 connections)', 'http1', h1Upstreams.ports[0], undefined),
    target('direct, HTTP/2 (1 connection, 100 streams)', 'http2', h2Upstreams.ports[0], undefined),
    target('mcgravity, HTTP/1.1 in, HTTP/1.1 out', 'http1', toH1.ports[0], toH1.pid),
    target('mcgravity, HTTP/2 in, HTTP/1.1 out', 'http2', toH1.ports[1], toH1.pid),
    target('mcgravity, HTTP/1.1 in, HTTP/2 out', 'http1', toH2.ports[0], toH2.pid),
    target('mcgravity, HTTP/2 in, HTTP/2 out', 'http2', toH2.ports[1], toH2.pid),
  ];
  for (const t of targets) await turn(t, 1); // warm-up, not kept
  for (const t of targets) {
    t.rps.length = 0;
    t.cpuUs.length = 0;
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < targets.length; i++) {
      await turn(targets[(i + round) % targets.length] as HttpTarget, TURN_S);
      process.stderr.write('.');
    }
  }
  process.stderr.write('\n');
  const h1Proxy = targets[2] as HttpTarget;
  const rows = targets.map((t) => [
    t.name,
    Math.round(median(t.rps)).toLocaleString('en'),
    t.cpuUs.length === 0 ? '–' : median(t.cpuUs).toFixed(0),
    t.cpuUs.length === 0
      ? '–'
      : `${median(t.rps.map((rps, round) => rps / (h1Proxy.rps[round] ?? Number.NaN))).toFixed(2)}×`,
  ]);
  return printTable(
    `HTTP/2: closed loops of ${H1_CONNECTIONS} HTTP/1.1 keep-alive connections or ${H2_STREAMS} streams on one HTTP/2 connection, ${ROUNDS} interleaved rounds of ${TURN_S} s; medians; 2 upstreams`,
    ['target', 'req/s', 'proxy CPU µs/req', 'req/s vs HTTP/1.1 both ways'],
    rows,
  );
}

/** Seconds to read everything a source sends over one connection to `port`. */
function drain(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    let received = 0;
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
    });
    socket.on('error', reject);
    socket.on('end', () => {
      socket.destroy();
      if (received !== SOURCE_BYTES) reject(new Error(`received ${received} of ${SOURCE_BYTES} bytes`));
      else resolve((performance.now() - started) / 1000);
    });
  });
}

async function tcpBench(children: ChildProcess[]): Promise<string> {
  const source = await spawnTarget(TARGETS, ['source', String(SOURCE_BYTES)]);
  children.push(source.child);
  const sourcePort = Number(source.line.split(' ')[1]);
  const proxy = await spawnTarget(TARGETS, ['tcp', String(sourcePort)]);
  children.push(proxy.child);
  const proxyPort = Number(proxy.line.split(' ')[1]);
  const rounds = { direct: [] as number[], proxied: [] as number[], cpu: [] as number[] };
  const mib = SOURCE_BYTES / 2 ** 20;
  for (let round = 0; round < TCP_ROUNDS; round++) {
    const order = round % 2 === 0 ? (['direct', 'proxied'] as const) : (['proxied', 'direct'] as const);
    for (const which of order) {
      const before = treeCpuTicks(proxy.child.pid as number);
      const seconds = await drain(which === 'direct' ? sourcePort : proxyPort);
      rounds[which].push(mib / seconds);
      if (which === 'proxied')
        rounds.cpu.push(((treeCpuTicks(proxy.child.pid as number) - before) * 10) / mib);
      process.stderr.write('.');
    }
  }
  process.stderr.write('\n');
  return printTable(
    `TCP: ${mib} MiB over one connection from a source server, ${TCP_ROUNDS} rounds; medians`,
    ['target', 'MiB/s', 'proxy CPU ms/MiB', 'vs direct'],
    [
      ['direct', median(rounds.direct).toFixed(0), '–', '1.00×'],
      [
        'createTcpProxy',
        median(rounds.proxied).toFixed(0),
        median(rounds.cpu).toFixed(2),
        `${median(rounds.proxied.map((v, i) => v / (rounds.direct[i] ?? Number.NaN))).toFixed(2)}×`,
      ],
    ],
  );
}

/** Runs the protocol benchmark and returns its tables. */
export async function runProtocolsBench(): Promise<string> {
  const children: ChildProcess[] = [];
  try {
    return `${await httpBench(children)}\n${await tcpBench(children)}`;
  } finally {
    for (const child of children) child.kill('SIGTERM');
  }
}
