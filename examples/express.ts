/**
 * mcgravity in an Express app: the app serves its own routes, parses JSON bodies for them, mounts a
 * balanced proxy under /api (Express strips the mount path, so `/api/users` reaches a backend as
 * `/users`), proxies WebSockets on the same server, and serves the admin API under /admin.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { createAdmin, createProxy } from 'mcgravity';
import WebSocket, { WebSocketServer } from 'ws';

// Two backends that say who they are and what they were asked, and echo WebSocket messages.
const backends = await Promise.all(
  ['users-1', 'users-2'].map(async (name) => {
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => {
        body += chunk.toString();
      });
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        res.end(
          JSON.stringify({
            served: name,
            path: req.url,
            forwardedFor: req.headers['x-forwarded-for'],
            ...(body === '' ? {} : { body }),
          }),
        );
      });
    });
    const sockets = new WebSocketServer({ server });
    sockets.on('connection', (socket) =>
      socket.on('message', (data) => socket.send(`${name} echoes ${data}`)),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { server, sockets, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
  }),
);

const proxy = createProxy({ cluster: { backends: backends.map((b) => b.url), balancer: 'round-robin' } });

const app = express();
// A body parser before the proxy is fine: what it parsed is sent on, re-encoded.
app.use(express.json());
app.get('/hello', (_req, res) => {
  res.json({ from: 'express' });
});
app.use('/api', proxy.handler);
// The admin API on the same app (behind your own auth in production), reading the proxy's clusters.
app.use('/admin', createAdmin({ proxy }));
const server = app.listen(0, '127.0.0.1');
// WebSockets: Express does not see upgrades, so the server hands them to the proxy itself.
server.on('upgrade', proxy.upgrade);
await new Promise<void>((resolve) => server.once('listening', resolve));
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

console.log('GET /hello ->', await (await fetch(`${base}/hello`)).text());
for (let i = 0; i < 4; i++) {
  console.log('GET /api/users?page=2 ->', await (await fetch(`${base}/api/users?page=2`)).text());
}
const posted = await fetch(`${base}/api/users`, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ name: 'ada' }),
});
console.log('POST /api/users ->', await posted.text());

const socket = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}/api/chat`);
await new Promise((resolve) => socket.once('open', resolve));
socket.send('hello');
console.log('WebSocket ->', String(await new Promise((resolve) => socket.once('message', resolve))));
socket.close();

const health = (await (await fetch(`${base}/admin/api/v1/health/clusters`)).json()) as {
  clusters: Record<string, { eligible: number }>;
};
console.log('GET /admin/api/v1/health/clusters ->', JSON.stringify(health.clusters.default));

server.close();
await proxy.close({ timeoutMs: 500 });
for (const backend of backends) {
  backend.sockets.close();
  backend.server.close();
}
