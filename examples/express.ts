/**
 * mcgravity as Express middleware: the app serves its own routes and mounts a balanced proxy under
 * /api. Express strips the mount path, so `/api/users` reaches a backend as `/users`.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { createProxy } from 'mcgravity';

// Two backends that say who they are and what they were asked.
const backends = await Promise.all(
  ['users-1', 'users-2'].map(async (name) => {
    const server = http.createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ served: name, path: req.url, forwardedFor: req.headers['x-forwarded-for'] }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
  }),
);

const proxy = createProxy({ cluster: { backends: backends.map((b) => b.url), balancer: 'round-robin' } });

const app = express();
app.get('/hello', (_req, res) => {
  res.json({ from: 'express' });
});
app.use('/api', proxy.handler);
const server = app.listen(0, '127.0.0.1');
await new Promise<void>((resolve) => server.once('listening', resolve));
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

console.log('GET /hello ->', await (await fetch(`${base}/hello`)).text());
for (let i = 0; i < 4; i++) {
  console.log('GET /api/users?page=2 ->', await (await fetch(`${base}/api/users?page=2`)).text());
}

server.close();
await proxy.close();
for (const backend of backends) backend.server.close();
