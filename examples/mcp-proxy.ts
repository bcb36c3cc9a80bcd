/**
 * An MCP-aware reverse proxy: any MCP client (here the SDK's) talks to two proxy replicas in front
 * of two MCP server replicas. With `sessionAffinity: 'mcp'` the proxies hand out session ids that
 * carry an opaque token of the owning replica, so either proxy routes a session to the same server
 * with no shared state: only the secret is shared.
 */
import type { AddressInfo } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { createCluster, createProxy } from 'mcgravity';
import { startReplica, textOf } from './support/mcpReplicas.js';

const replicas = await Promise.all(['replica-a', 'replica-b'].map(startReplica));
const cluster = createCluster({
  name: 'tools',
  backends: replicas.map((replica) => ({ url: replica.url, id: replica.name })),
  balancer: 'round-robin',
  health: false,
});
const options = {
  cluster,
  sessionAffinity: 'mcp',
  affinitySecret: 'share me between proxy replicas',
} as const;
const proxies = [createProxy(options), createProxy(options)];
const origins = await Promise.all(
  proxies.map(async (proxy) => `http://127.0.0.1:${((await proxy.listen(0)).address() as AddressInfo).port}`),
);

// A client whose requests take turns between the two proxies, as behind a DNS round robin.
let turn = 0;
const alternate = (input: string | URL | Request, init?: RequestInit) => {
  const url = new URL(String(input instanceof Request ? input.url : input));
  return fetch(origins[turn++ % 2] + url.pathname, init);
};

for (const name of ['first', 'second']) {
  const transport = new StreamableHTTPClientTransport(new URL(`${origins[0]}/mcp`), { fetch: alternate });
  const client = new Client({ name, version: '1.0.0' });
  await client.connect(transport);
  const [token, serverSession] = (transport.sessionId ?? '').split(/\.(.*)/);
  console.log(`${name} session: token ${token} + the server's id (${serverSession?.length} chars)`);
  const answers = [];
  for (let call = 0; call < 4; call++) answers.push(textOf(await client.callTool({ name: 'whoami' })));
  console.log(`${name}: ${answers.join(' ')} (through both proxies)`);
  await client.close();
}

// A session id the proxies did not issue is refused without reaching a server.
const forged = await fetch(`${origins[1]}/mcp`, {
  method: 'POST',
  headers: { 'content-type': 'application/json', 'mcp-session-id': 'forged.session' },
  body: '{"jsonrpc":"2.0","id":1,"method":"ping"}',
});
console.log(`forged session: ${forged.status} ${JSON.stringify(await forged.json())}`);

console.log('sessions seen by proxy 1:', JSON.stringify(proxies[0]!.mcpSessions()));
for (const proxy of proxies) await proxy.close();
await cluster.close();
for (const replica of replicas) await replica.stop();
console.log('done');
