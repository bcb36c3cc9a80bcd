import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { requestIdOf, stripPrefix, targetPath, upstreamHeaders } from '../../src/proxy/forwarding.js';
import { resolveProxyOptions } from '../../src/proxy/options.js';

describe('forwarding', () => {
  it.each([
    ['/a?b=1', '/a?b=1'],
    ['//evil.example/x', '//evil.example/x'], // stays a path, concatenated, never resolved
    ['http://host.example/p?q', '/p?q'],
    ['*', undefined],
    ['host:443', undefined],
  ])('target %j → %j', (url, path) => {
    expect(targetPath(url)).toBe(path);
  });

  it.each([
    ['/api/users', '/api', '/users'],
    ['/api', '/api', '/'],
    ['/api?x=1', '/api', '/?x=1'],
  ])('strips %s of %s: %s', (path, prefix, result) => {
    expect(stripPrefix(path, prefix)).toBe(result);
  });

  it('keeps a sane client request id and replaces anything else', () => {
    const req = (id?: string) =>
      ({ headers: id === undefined ? {} : { 'x-request-id': id } }) as IncomingMessage;
    expect(requestIdOf(req('abc-123'), 'x-request-id')).toBe('abc-123');
    expect(requestIdOf(req('no spaces allowed'), 'x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect(requestIdOf(req(), undefined)).toBeUndefined();
  });

  it('strips hop-by-hop headers, sets X-Forwarded-*, Via and Forwarded, and drops client claims it does not trust', () => {
    const settings = resolveProxyOptions({
      cluster: { backends: ['http://127.0.0.1:1'] },
      via: true,
      forwarded: true,
    });
    const req = {
      headers: {
        host: 'app.example',
        connection: 'keep-alive, x-drop',
        'x-drop': '1',
        'content-length': '5',
        forwarded: 'for=6.6.6.6',
        expect: '100-continue',
      },
      socket: {},
    } as unknown as IncomingMessage;
    const headers = upstreamHeaders(
      req,
      { client: '10.0.0.1', chain: '10.0.0.1', peerTrusted: false },
      'rid',
      settings,
    );
    expect(headers).toEqual({
      host: 'app.example',
      'content-length': '5',
      'x-forwarded-for': '10.0.0.1',
      'x-forwarded-proto': 'http',
      'x-forwarded-host': 'app.example',
      forwarded: 'for=10.0.0.1;host="app.example";proto=http',
      'x-request-id': 'rid',
      via: '1.1 mcgravity',
    });
    void Promise.all(settings.owned.map((cluster) => cluster.close()));
  });
});
