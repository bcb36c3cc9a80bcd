/**
 * Serving on servers the caller made: an HTTPS server, and a server handed from one proxy to
 * another (a configuration reload) with a request in flight, which the old proxy's close() waits for.
 */

import type { Server } from 'node:http';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { Agent, request } from 'undici';
import { describe, expect, it } from 'vitest';
import { createProxy } from '../../src/proxy/createProxy.js';
import { within } from '../helpers/async.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { selfSigned, tlsSkipReason } from '../helpers/tls.js';
import { startUpstream } from '../helpers/upstreams.js';

const defer = cleanupAfterEach();

async function listening(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  defer(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as AddressInfo).port;
}

describe('proxy.attach', () => {
  const skip = tlsSkipReason();
  it.skipIf(skip !== undefined)(`serves on an HTTPS server of the caller's ${skip ?? ''}`, async () => {
    const backend = await startUpstream((req, res) => res.end(`secure ${req.headers['x-forwarded-proto']}`));
    defer(() => backend.close());
    const { cert, key } = selfSigned();
    const server = https.createServer({ cert, key });
    const proxy = createProxy({ cluster: { backends: [backend.url] } });
    proxy.attach(server);
    defer(() => proxy.close({ timeoutMs: 100 }));
    const port = await listening(server);
    const dispatcher = new Agent({ connect: { ca: cert } });
    defer(() => dispatcher.close());
    const response = await request(`https://localhost:${port}/`, { dispatcher });
    expect(await response.body.text()).toBe('secure https');
  });

  it('hands a server to another proxy; the old one finishes its request in flight first', async () => {
    let release: (() => void) | undefined;
    const old = await startUpstream((_req, res) => {
      release = () => res.end('from the old configuration');
    });
    const next = await startUpstream((_req, res) => res.end('from the new configuration'));
    defer(() => old.close());
    defer(() => next.close());
    const server = http.createServer();
    const before = createProxy({ cluster: { backends: [old.url] } });
    before.attach(server);
    const port = await listening(server);
    const inFlight = request(`http://127.0.0.1:${port}/`).then((r) => r.body.text());
    await within(() => release !== undefined, 5_000, 'the request reached the old backend');

    const after = createProxy({ cluster: { backends: [next.url] } });
    after.attach(server);
    before.detach(server);
    defer(() => after.close({ timeoutMs: 100 }));
    expect(await (await request(`http://127.0.0.1:${port}/`)).body.text()).toBe('from the new configuration');

    let closed = false;
    const closing = before.close({ timeoutMs: 5_000 }).then(() => {
      closed = true;
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(closed).toBe(false); // waiting for the request in flight
    expect(server.listening).toBe(true); // a detached server is not the old proxy's to close
    release?.();
    expect(await inFlight).toBe('from the old configuration');
    await closing;
    expect(before.inflight).toBe(0);
  });
});
