import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { createProxy } from '../../src/proxy/createProxy.js';
import { until } from '../helpers/async.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { ManualClock } from '../helpers/clock.js';
import { loopbackFixtures } from '../helpers/fixtures.js';
import { closedPort } from '../helpers/upstreams.js';

const defer = cleanupAfterEach();
const { upstream, cluster } = loopbackFixtures(defer, 200);

/** A pino logger writing JSON lines into an array. */
function capture() {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line !== '') lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, sink), lines };
}

describe('logging', () => {
  it('tells a pino logger that an endpoint went down, and why', async () => {
    const clock = new ManualClock(1_000);
    const sick = await upstream((_req, res) => {
      res.statusCode = 503;
      res.end();
    });
    const { logger, lines } = capture();
    cluster({
      name: 'api',
      backends: [{ url: sick.url, id: 'sick' }],
      health: { intervalMs: 1000, unhealthyThreshold: 1, jitter: 0, clock },
      logger,
      clock,
    });
    clock.advance(1000);
    await until(() => lines.some((line) => line.msg?.toString().startsWith('endpoint down')));
    const down = lines.find((line) => String(line.msg).startsWith('endpoint down'));
    expect(down).toMatchObject({ level: 40, cluster: 'api', endpoint: 'sick', reason: 'status 503' });
    expect(lines).toContainEqual(
      expect.objectContaining({ level: 20, msg: 'health check failed (status 503)' }),
    );
    expect(lines).toContainEqual(
      expect.objectContaining({ level: 50, cluster: 'api', msg: expect.stringMatching(/^panic mode/) }),
    );
  });

  it('is silent without a logger, and the proxy logs upstream failures with its request id', async () => {
    const { logger, lines } = capture();
    const proxy = createProxy({
      cluster: { backends: [`http://127.0.0.1:${await closedPort()}`], retry: false },
      logger,
    });
    const port = ((await proxy.listen(0)).address() as { port: number }).port;
    defer(() => proxy.close({ timeoutMs: 100 }));
    const response = await fetch(`http://127.0.0.1:${port}/x`, { headers: { 'x-request-id': 'req-1' } });
    expect(response.status).toBe(502);
    expect(lines).toContainEqual(
      expect.objectContaining({
        level: 40,
        requestId: 'req-1',
        cluster: 'default',
        code: 'EUPSTREAM',
        status: 502,
      }),
    );
    expect(() =>
      createProxy({ cluster: { backends: ['http://127.0.0.1:1'] }, logger: console as never }),
    ).not.toThrow();
    expect(() => createProxy({ cluster: { backends: ['http://127.0.0.1:1'] }, logger: {} as never })).toThrow(
      /logger must be a logger with debug, info, warn and error methods/,
    );
  });
});
