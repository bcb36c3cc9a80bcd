import { describe, expect, it } from 'vitest';
import { describeFailure, httpCheck, tcpCheck } from '../../src/health/checks.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { closedPort, startUpstream } from '../helpers/upstreams.js';

const defer = cleanupAfterEach();
const NO_ABORT = new AbortController().signal;

describe('health checks', () => {
  it('passes an HTTP check whose status, headers and body match, with g-flagged patterns every time', async () => {
    const server = await startUpstream((req, res) => {
      res.setHeader('x-role', 'primary');
      res.end(req.url === '/health' ? 'status: ready' : 'nope');
    });
    defer(() => server.close());
    const check = httpCheck({ expectHeaders: { 'X-Role': /^prim/g }, expectBody: /ready/g });
    const target = { id: 'a', url: server.url };
    for (let i = 0; i < 5; i++) await expect(check(target, NO_ABORT)).resolves.toBe(true);
    const wrongBody = httpCheck({ path: '/other', expectBody: 'ready' });
    const failure = await wrongBody(target, NO_ABORT).catch((error: unknown) => error);
    expect(describeFailure(failure)).toBe('body mismatch');
    const wrongHeader = httpCheck({ expectHeaders: { 'x-role': 'replica' } });
    expect(describeFailure(await wrongHeader(target, NO_ABORT).catch((error: unknown) => error))).toBe(
      'header x-role mismatch',
    );
    const wrongStatus = httpCheck({ expectStatus: [204, '300-399'] });
    expect(describeFailure(await wrongStatus(target, NO_ABORT).catch((error: unknown) => error))).toBe(
      'status 200',
    );
  });

  it('passes a TCP check on an open port and names a refused one', async () => {
    const server = await startUpstream();
    defer(() => server.close());
    await expect(tcpCheck()({ id: 'a', url: server.url }, NO_ABORT)).resolves.toBe(true);
    const refused = await tcpCheck()(
      { id: 'b', url: `http://127.0.0.1:${await closedPort()}` },
      NO_ABORT,
    ).catch((error: unknown) => error);
    expect(describeFailure(refused)).toBe('connect-failure');
  });

  it.each([
    [{ path: 'health' }, /path must be a string starting with "\/"/],
    [{ method: 'POST' }, /method must be 'GET' or 'HEAD'/],
    [{ expectStatus: '2xy' }, /expectStatus entries must be/],
    [{ expectStatus: [] }, /expectStatus must name at least one status/],
    [{ expectBody: 42 }, /expectBody must be a string or a RegExp/],
    [{ expectHeaders: { x: 1 } }, /expectHeaders\.x must be a string or a RegExp/],
  ])('refuses %j, naming the option', (options, message) => {
    expect(() => httpCheck(options as never)).toThrow(message);
  });
});
