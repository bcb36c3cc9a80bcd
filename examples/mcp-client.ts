/**
 * Balanced, session-aware MCP client calls: the SDK's own client, handed mcgravity's fetch, talks to
 * three replicas of one MCP server as if they were one. Each session stays on the replica that
 * opened it; when that replica dies, the session gets 404 and the client opens a new one elsewhere.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { createCluster } from 'mcgravity';
import { createMcpFetch } from 'mcgravity/mcp';
import { startReplica, textOf } from './support/mcpReplicas.js';

const replicas = await Promise.all(['replica-a', 'replica-b', 'replica-c'].map(startReplica));
const cluster = createCluster({
  backends: replicas.map((replica) => ({ url: replica.url, id: replica.name })),
  balancer: 'round-robin',
  health: false, // the example stops a replica on purpose; active checks would notice too
});
const mcpFetch = createMcpFetch(cluster);
mcpFetch.events.on('session:lost', ({ endpointId, reason }) =>
  console.log(`event: a session of ${endpointId} was lost (${reason}); the client was told 404`),
);

async function connect(): Promise<Client> {
  // The URL's path is kept; its origin is replaced by the chosen replica's.
  const transport = new StreamableHTTPClientTransport(new URL('http://mcp.internal/mcp'), {
    fetch: mcpFetch,
  });
  const client = new Client({ name: 'example', version: '1.0.0' });
  await client.connect(transport);
  return client;
}

const clients = await Promise.all([connect(), connect(), connect()]);
for (const [i, client] of clients.entries()) {
  const answers = [];
  for (let call = 0; call < 4; call++) answers.push(textOf(await client.callTool({ name: 'whoami' })));
  console.log(`session ${i + 1}: ${answers.join(' ')}`);
}

const victim = textOf(await clients[0]!.callTool({ name: 'whoami' }));
await replicas.find((replica) => replica.name === victim)!.stop();
console.log(`stopped ${victim}`);
try {
  await clients[0]!.callTool({ name: 'whoami' });
} catch (error) {
  console.log(`session 1: ${(error as Error).message.slice(0, 60)}`);
  await clients[0]!.close();
  clients[0] = await connect();
  console.log(`session 1 again: ${textOf(await clients[0].callTool({ name: 'whoami' }))}`);
}
console.log(`session 2: ${textOf(await clients[1]!.callTool({ name: 'whoami' }))}`);

const whoami = mcpFetch.stats().methods['tools/call:whoami'];
console.log(
  `whoami: ${whoami?.requests} calls, ${whoami?.errors} failed, p50 ${whoami?.latency.p50.toFixed(1)} ms`,
);

for (const client of clients) await client.close();
await cluster.close();
for (const replica of replicas) if (replica.name !== victim) await replica.stop();
console.log('done');
