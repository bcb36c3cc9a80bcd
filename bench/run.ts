/**
 * `npm run bench [suite…]`: runs the benchmark suites and prints their tables. Suites: pick, disruption, resilience, proxy, workers, mcp, headers, protocols, memory.
 * Run with `--expose-gc` (the npm script does) so heap figures start from a collected heap.
 */

import { runDisruptionBench } from './disruption.js';
import { machineLine } from './harness.js';
import { runHeadersBench } from './headers.js';
import { runMcpBench } from './mcp.js';
import { runMemoryBench } from './memory.js';
import { runPickBench } from './pick.js';
import { runProtocolsBench } from './protocols.js';
import { runProxyBench } from './proxy.js';
import { runResilienceBench } from './resilience.js';
import { runWorkersBench } from './workers.js';

const suites: Record<string, () => string | Promise<string>> = {
  pick: runPickBench,
  disruption: runDisruptionBench,
  resilience: runResilienceBench,
  proxy: runProxyBench,
  mcp: runMcpBench,
  headers: runHeadersBench,
  protocols: runProtocolsBench,
  memory: runMemoryBench,
  workers: runWorkersBench,
};

const wanted = process.argv.slice(2);
for (const name of wanted) {
  if (!(name in suites)) {
    console.error(`unknown suite "${name}"; suites: ${Object.keys(suites).join(', ')}`);
    process.exit(2);
  }
}
console.log(`mcgravity benchmarks — ${machineLine()}\n`);
for (const [name, run] of Object.entries(suites)) {
  if (wanted.length === 0 || wanted.includes(name)) await run();
}
