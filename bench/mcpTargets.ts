/**
 * The processes of the MCP benchmark: `replicas <n> [json]` (n stateful MCP server replicas of the
 * SDK, one process, answering with SSE streams or, with `json`, JSON bodies) and `proxy <port>…` (mcgravity's proxy with MCP session affinity in front of them).
 * Run only by bench/mcp.ts.
 */
import type { AddressInfo } from 'node:net';
import { startMcpReplica } from '../test/helpers/mcp.js';

const [role, ...rest] = process.argv.slice(2);
process.on('SIGTERM', () => process.exit(0));

if (role === 'replicas') {
  const count = Number(rest[0] ?? 3);
  const json = rest[1] === 'json'; // answers as JSON bodies; SSE streams otherwise
  const replicas = await Promise.all(
    Array.from({ length: count }, (_, i) =>
      startMcpReplica(String.fromCharCode(97 + i), 'stateful', { json }),
    ),
  );
  process.stdout.write(`PORTS ${replicas.map((replica) => replica.port).join(' ')}\n`);
} else if (role === 'proxy') {
  // The built package, as users run it (npm run bench builds first).
  const dist = new URL('../dist/index.js', import.meta.url).href;
  const { createProxy } = (await import(dist)) as typeof import('../src/index.js');
  const proxy = createProxy({
    cluster: {
      backends: rest.map((port, i) => ({ url: `http://127.0.0.1:${port}`, id: String.fromCharCode(97 + i) })),
      health: false,
    },
    sessionAffinity: 'mcp',
    requestId: false,
  });
  const server = await proxy.listen(0);
  process.stdout.write(`PORT ${(server.address() as AddressInfo).port}\n`);
} else {
  throw new Error(`unknown role ${role}`);
}
