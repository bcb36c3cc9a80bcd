/**
 * Request bodies behind Express body parsers: what a parser already read is sent on, re-encoded,
 * with a Content-Length that matches; what cannot be sent fails at once with a 500 that says why.
 */
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import express from 'express';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { systemClock } from '../../src/core/clock.js';
import { type BodyWaiter, limitBody, readBody } from '../../src/proxy/body.js';
import { createProxy } from '../../src/proxy/createProxy.js';
import { IdleSweeper } from '../../src/proxy/IdleSweeper.js';
import { flush } from '../helpers/async.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { ManualClock } from '../helpers/clock.js';
import { startUpstream } from '../helpers/upstreams.js';

const defer = cleanupAfterEach();

/** An Express app with `parser` before the proxy; the upstream echoes what it received. */
async function appWith(parser: express.RequestHandler | undefined) {
  const received: { length: string | undefined; type: string | undefined; body: string }[] = [];
  const upstream = await startUpstream((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      received.push({
        length: req.headers['content-length'],
        type: req.headers['content-type'],
        body: Buffer.concat(chunks).toString('utf8'),
      });
      res.end('ok');
    });
  });
  defer(() => upstream.close());
  const proxy = createProxy({ cluster: { backends: [upstream.url] }, timeouts: { idleMs: 60_000 } });
  defer(() => proxy.close({ timeoutMs: 100 }));
  const app = express();
  if (parser !== undefined) app.use(parser);
  app.use('/api', proxy.handler);
  const server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', resolve));
  defer(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/items`, received };
}

async function post(url: string, type: string, body: string) {
  const started = performance.now();
  const response = await request(url, { method: 'POST', headers: { 'content-type': type }, body });
  return { status: response.statusCode, text: await response.body.text(), ms: performance.now() - started };
}

describe('bodies already read by a parser', () => {
  it.each([
    ['express.json()', express.json(), 'application/json', '{"name":"ada","tags":["a","b"]}'],
    [
      'express.urlencoded()',
      express.urlencoded({ extended: false }),
      'application/x-www-form-urlencoded',
      'name=ada&tag=a&tag=b',
    ],
    ['express.raw()', express.raw({ type: '*/*' }), 'application/octet-stream', 'raw bytes \u0001\u0002'],
    ['express.text()', express.text(), 'text/plain', 'just text'],
  ])('forwards what %s parsed, with a matching Content-Length', async (_name, parser, type, body) => {
    const { url, received } = await appWith(parser);
    const answer = await post(url, type, body);
    expect(answer).toMatchObject({ status: 200, text: 'ok' });
    const got = received[0];
    expect(got?.body).toBe(body);
    expect(got?.length).toBe(String(Buffer.byteLength(got?.body ?? '')));
    expect(got?.type).toBe(type);
  });

  it('streams a multipart body that no parser read, unchanged', async () => {
    const { url, received } = await appWith(express.json());
    const body = '--b\r\ncontent-disposition: form-data; name="f"\r\n\r\nvalue\r\n--b--\r\n';
    expect(await post(url, 'multipart/form-data; boundary=b', body)).toMatchObject({ status: 200 });
    expect(received[0]?.body).toBe(body);
  });

  it('fails at once with a 500 naming the cause when the parsed body cannot be re-encoded', async () => {
    const { url, received } = await appWith(express.urlencoded({ extended: true }));
    const answer = await post(url, 'application/x-www-form-urlencoded', 'user[name]=ada');
    expect(answer.status).toBe(500);
    expect(JSON.parse(answer.text)).toMatchObject({
      error: {
        code: 'EINTERNAL',
        message: expect.stringMatching(/already read by a body parser.*mount the proxy before/),
      },
    });
    expect(answer.ms).toBeLessThan(5_000); // never the idle timeout's minute
    expect(received).toHaveLength(0);
  });
});

describe('the copy a streamed body keeps', () => {
  /** A limited body fed by a stand-in request the test writes to. */
  function streamed(keepBytes: number) {
    const req = new PassThrough() as PassThrough & IncomingMessage;
    const sweeper = new IdleSweeper(60_000, systemClock);
    const body = limitBody(req, () => {}, 1_000_000, sweeper, systemClock, keepBytes);
    body.resume(); // read as a backend would
    return { req, body, sweeper };
  }

  it('gives the whole body once it has ended within the bound, waiting for the end if asked early', async () => {
    const { req, body, sweeper } = streamed(16);
    req.write('part one ');
    await flush();
    expect(body.replay()).toBeUndefined(); // not ended yet
    const later = body.replayWhenEnded();
    req.end('two');
    expect((await later)?.toString()).toBe('part one two');
    expect(body.replay()?.toString()).toBe('part one two');
    sweeper.close();
  });

  it('gives nothing for a body longer than the bound, as soon as it grows past it', async () => {
    const { req, body, sweeper } = streamed(8);
    req.write('12345');
    await flush();
    const later = body.replayWhenEnded();
    req.write('67890'); // past 8 bytes: no copy, and the waiter hears it without waiting for the end
    expect(await later).toBeUndefined();
    req.end();
    await flush();
    expect(body.replay()).toBeUndefined();
    sweeper.close();
  });
});

describe('a small body read whole', () => {
  /** readBody over a PassThrough standing in for the request, with what its waiter heard. */
  function reading(declared: number) {
    const req = new PassThrough();
    const clock = new ManualClock();
    const sweeper = new IdleSweeper(1000, clock);
    const heard: (Buffer | Error)[] = [];
    const waiter: BodyWaiter = {
      bodyRead: (body) => heard.push(body),
      bodyFailed: (error) => heard.push(error as Error),
    };
    readBody(req as unknown as IncomingMessage, declared, sweeper, clock, waiter);
    return { req, clock, sweeper, heard };
  }

  it('hands a body that came in one chunk on as that chunk, uncopied', async () => {
    const { req, clock, heard } = reading(5);
    const chunk = Buffer.from('hello');
    req.end(chunk);
    await flush();
    expect(heard).toHaveLength(1);
    expect(heard[0]).toBe(chunk);
    clock.advance(5000); // no longer watched: no timeout after the end
    expect(heard).toHaveLength(1);
  });

  it('joins a body that came in several chunks', async () => {
    const { req, heard } = reading(11);
    req.write('hello ');
    await flush();
    req.end('world');
    await flush();
    expect(heard.map(String)).toEqual(['hello world']);
  });

  it('fails once with EREQUESTTIMEOUT when the body goes idle, whatever the request does after', async () => {
    const { req, clock, heard } = reading(100);
    req.write('part');
    await flush();
    clock.advance(1250);
    expect(heard).toHaveLength(1);
    expect(heard[0]).toMatchObject({ code: 'EREQUESTTIMEOUT' });
    expect(req.destroyed).toBe(true);
    req.emit('error', new Error('late'));
    expect(heard).toHaveLength(1);
  });
});
