/**
 * `npm run bench memory`: memory held by the proxy's per-client state, each case in a fresh process
 * after a full collection before and after (so the figures are what stays, not garbage):
 *
 * - rate-limit keys: 1,000,000 distinct clients through a `RateLimiter` with `maxKeys` (the default
 *   100,000, and 10,000): what the memory store keeps is bounded by `maxKeys`, whatever the traffic;
 * - MCP sessions: 100,000 sessions in the table the proxy's `table` mode keeps (session id → owner),
 *   ids as the SDK makes them (UUIDs), as flat strings, as a header parser hands them over.
 *
 * Still to come: idle keep-alive connections and open WebSocket tunnels, which need the proxy in its
 * own process and sockets in another.
 */
import { randomUUID } from 'node:crypto';
import { systemClock } from '../src/core/clock.js';
import { MemoryStore } from '../src/limit/MemoryStore.js';
import { RateLimiter } from '../src/limit/RateLimiter.js';
import { SessionTable } from '../src/mcp/SessionTable.js';
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
  /** Fills the structure; `hold` keeps it alive until the heap is read. */
  run(): Promise<{ kept: number; hold: unknown }>;
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
];

/** Runs the memory benchmark and returns its table. */
export function runMemoryBench(): string {
  const rows = cases.map((_, index) => runIsolated(import.meta.url, 'memory', index) as string[]);
  process.stderr.write('\n');
  return printTable(
    'Memory: what stays after a full collection, each case in a fresh process',
    ['case', 'kept', 'heap', 'RSS', 'heap per kept entry'],
    rows,
  );
}

registerCases('memory', async (index) => {
  const item = cases[index] as Case;
  const before = settled();
  const { kept, hold } = await item.run();
  const after = settled();
  if (hold === undefined) throw new Error('nothing held');
  const heap = after.heap - before.heap;
  return [
    item.label,
    kept.toLocaleString('en'),
    bytes(heap),
    bytes(after.rss - before.rss),
    `${Math.round(heap / Math.max(1, kept))} B`,
  ];
});
