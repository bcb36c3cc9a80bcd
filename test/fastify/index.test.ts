import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { mcgravity } from '../../src/fastify/index.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { startUpstream } from '../helpers/upstreams.js';

const defer = cleanupAfterEach();

async function echoBackend() {
  const backend = await startUpstream((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => {
      body += chunk.toString();
    });
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({ method: req.method, url: req.url, type: req.headers['content-type'] ?? null, body }),
      );
    });
  });
  const sockets = new WebSocketServer({ server: backend.server });
  sockets.on('connection', (socket, req) =>
    socket.on('message', (data) => socket.send(`${req.url} ${data}`)),
  );
  defer(() => new Promise<void>((resolve) => sockets.close(() => resolve())));
  defer(() => backend.close());
  return backend;
}

describe('mcgravity/fastify', () => {
  it('proxies HTTP below its prefix with bodies untouched, rewrites the prefix, and proxies WebSockets', async () => {
    const backend = await echoBackend();
    const app = Fastify();
    app.get('/own', async () => ({ from: 'fastify' }));
    await app.register(mcgravity, {
      prefix: '/api',
      rewritePrefix: '/v2',
      upstream: { backends: [backend.url] },
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    defer(() => app.close());
    const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;

    expect(await (await request(`${base}/own`)).body.json()).toEqual({ from: 'fastify' });
    const got = await request(`${base}/api/users?page=2`);
    expect(await got.body.json()).toMatchObject({ method: 'GET', url: '/v2/users?page=2' });
    const body = '{"name":"ada",  "kept":"as sent"}';
    const posted = await request(`${base}/api/users`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    expect(await posted.body.json()).toEqual({
      method: 'POST',
      url: '/v2/users',
      type: 'application/json',
      body,
    });
    expect(await (await request(`${base}/api`)).body.json()).toMatchObject({ url: '/v2/' });

    const socket = new WebSocket(`ws://127.0.0.1:${(app.server.address() as AddressInfo).port}/api/chat`);
    defer(async () => socket.terminate());
    await new Promise((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', reject);
    });
    socket.send('hello');
    expect(String(await new Promise((resolve) => socket.once('message', resolve)))).toBe('/v2/chat hello');
  });

  it('refuses to register without an upstream, or with a bad rewritePrefix', async () => {
    await expect(
      Fastify()
        .register(mcgravity, {} as never)
        .ready(),
    ).rejects.toThrow(/needs an upstream/);
    await expect(
      Fastify()
        .register(mcgravity, { upstream: { backends: ['http://127.0.0.1:1'] }, rewritePrefix: 'v2' })
        .ready(),
    ).rejects.toThrow(/rewritePrefix must be/);
  });
});
