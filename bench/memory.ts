/**
 * `npm run bench memory`: memory held by the proxy's per-client state, each case in a fresh process
 * after a full collection before and after (so the figures are what stays, not garbage):
 *
 * - rate-limit keys: 1,000,000 distinct clients through a `RateLimiter` with `maxKeys` (the default
 *   100,000, and 10,000): what the memory store keeps is bounded by `maxKeys`, whatever the traffic;
 * - MCP sessions: 100,000 sessions in the table the proxy's `table` mode keeps (session id → owner),
 *   ids as the SDK makes them (UUIDs), as flat strings, as a header parser hands them over.
 *
 * - idle keep-alive connections: 10,000 clients that have each sent one GET through `createProxy`
 *   (defaults) and stay connected, idle;
 * - WebSocket tunnels: 9,000 open WebSockets through `createProxy`, each with one message echoed.
 *   A tunnel holds two sockets in the proxy, and this machine's open-file limit (20,000, which root
 *   cannot raise here) leaves room for 9,000; the figure per tunnel is scaled to 10,000.
 *
 * In the connection cases the clients and the upstream run in another process (bench/memoryPeer.ts),
 * and the "before" reading is taken once the proxy has served its first request, so that what is
 * counted is what the connections add.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { request } from 'undici';
import { systemClock } from '../src/core/clock.js';
import { MemoryStore } from '../src/limit/MemoryStore.js';
import { RateLimiter } from '../src/limit/RateLimiter.js';
import { SessionTable } from '../src/mcp/SessionTable.js';
import { createProxy } from '../src/proxy/createProxy.js';
import { bytes, printTable, registerCases, runIsolated } from './harness.js';

declare const gc: (() => void) | undefined;

function settled(): { heap: number; rss: number } {
  gc?.();
  gc?.();
  const usage = process.memoryUsage();
  return { heap: usage.heapUsed, rss: usage.rss };
}

interface Case {
  readonly label: string;
  /** Entries per reported figure, when the case measures fewer than the label says. */
  readonly scaleTo?: number;
  /**
   * Fills the structure; `hold` keeps it alive until the heap is read; `before`, when given, replaces
   * the reading taken before `run()` (one taken after the case's own set-up).
   */
  run(): Promise<{ kept: number; hold: unknown; before?: { heap: number; rss: number } }>;
}

/** Starts bench/memoryPeer.ts as `kind` and reads its lines. */
async function peer(
  kind: 'http' | 'ws',
): Promise<{ child: ChildProcess; port: number; next(): Promise<string> }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', new URL('./memoryPeer.ts', import.meta.url).pathname, kind],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })[Symbol.asyncIterator]();
  const next = async () => {
    const { value, done } = await lines.next();
    if (done === true) throw new Error(`memoryPeer ${kind} ended`);
    return String(value);
  };
  const port = Number((await next()).split(' ')[1]);
  return { child, port, next };
}

/** `count` connections of `kind` held open through a proxy with its defaults, measured from after its first request. */
async function connections(kind: 'http' | 'ws', count: number) {
  const other = await peer(kind);
  const proxy = createProxy({ cluster: { backends: [`http://127.0.0.1:${other.port}`] } });
  const server = await proxy.listen(0);
  // Node's 5 s keep-alive would close the first idle clients before the last one connected.
  (server as import('node:http').Server).keepAliveTimeout = 600_000;
  const port = (server.address() as AddressInfo).port;
  await (await request(`http://127.0.0.1:${port}/`)).body.text();
  const before = settled();
  other.child.stdin?.write(`CONNECT ${port} ${count}\n`);
  const opened = Number((await other.next()).split(' ')[1]);
  const open = await new Promise<number>((resolve) =>
    server.getConnections((_error, connected) => resolve(connected)),
  );
  if (opened !== count || (kind === 'ws' ? proxy.tunnels : open) < count)
    throw new Error(`${kind}: ${opened} opened, the proxy holds ${kind === 'ws' ? proxy.tunnels : open}`);
  return { kept: count, hold: [proxy, other.child], before };
}

const cases: Case[] = [
  ...[100_000, 10_000].map(
    (maxKeys): Case => ({
      label: `rate-limit keys: 1,000,000 clients, maxKeys ${maxKeys.toLocaleString('en')}`,
      async run() {
        const store = new MemoryStore({ maxKeys });
        const limiter = new RateLimiter({ limit: 100, windowMs: 60_000, store });
        for (let i = 0; i < 1_000_000; i++) await limiter.consume(`client-${i}`);
        return { kept: store.size, hold: limiter };
      },
    }),
  ),
  {
    label: 'MCP sessions (table mode): 100,000 sessions',
    async run() {
      const table = new SessionTable({ maxSessions: 100_000, idleMs: 3_600_000, clock: systemClock });
      // Ids as they arrive in an Mcp-Session-Id header: flat strings. (randomUUID() returns a rope of
      // concatenated pieces, several times the size, which no header parser produces.)
      const owners = ['replica-0', 'replica-1', 'replica-2'];
      for (let i = 0; i < 100_000; i++) {
        table.set(Buffer.from(randomUUID(), 'latin1').toString('latin1'), owners[i % 3] as string, undefined);
      }
      return { kept: table.size, hold: table };
    },
  },
  {
    label: 'idle keep-alive client connections: 10,000',
    run: () => connections('http', 10_000),
  },
  {
    label: 'WebSocket tunnels: 10,000 (9,000 measured)',
    scaleTo: 10_000,
    run: () => connections('ws', 9_000),
  },
];

/** Runs the memory benchmark and returns its table. */
export function runMemoryBench(): string {
  const rows = cases.map((_, index) => runIsolated(import.meta.url, 'memory', index) as string[]);
  process.stderr.write('\n');
  return printTable(
    'Memory: what stays after a full collection, each case in a fresh process',
    ['case', 'kept', 'heap', 'RSS', 'heap per entry', 'RSS per entry'],
    rows,
  );
}

registerCases('memory', async (index) => {
  const item = cases[index] as Case;
  const start = settled();
  const { kept, hold, before = start } = await item.run();
  const after = settled();
  if (hold === undefined) throw new Error('nothing held');
  // Measured on `kept` entries; reported for `scaleTo` when the label promises more than fit here.
  const scale = (item.scaleTo ?? kept) / kept;
  const heap = after.heap - before.heap;
  const row = [
    item.label,
    (item.scaleTo ?? kept).toLocaleString('en'),
    bytes(heap * scale),
    bytes((after.rss - before.rss) * scale),
    `${Math.round(heap / Math.max(1, kept))} B`,
    `${Math.round((after.rss - before.rss) / Math.max(1, kept))} B`,
  ];
  // The connection cases leave a proxy and a peer process: the case's process exits with them.
  return row;
});
