import { describe, expect, it } from 'vitest';
import { endToEnd, responseHeaders } from '../../src/proxy/headers.js';

describe('endToEnd', () => {
  it.each([
    ['keep-alive', { accept: '*/*', 'x-secret': 's' }],
    [' Keep-Alive ', { accept: '*/*', 'x-secret': 's' }],
    ['close', { accept: '*/*', 'x-secret': 's' }],
    ['keep-alive, x-secret', { accept: '*/*' }],
    ['X-Secret', { accept: '*/*' }],
  ])('with Connection: %j keeps %j', (connection, kept) => {
    const headers = {
      connection,
      'keep-alive': 'timeout=5',
      'transfer-encoding': 'chunked',
      upgrade: 'websocket',
      te: 'gzip',
      accept: '*/*',
      'x-secret': 's',
    };
    expect(endToEnd(headers)).toEqual(kept);
  });

  it('keeps TE: trailers (gRPC needs it end to end) and drops HTTP/2 pseudo-headers', () => {
    expect(
      endToEnd({
        ':method': 'POST',
        ':path': '/x',
        ':authority': 'a',
        te: 'trailers',
        'content-type': 'application/grpc',
      }),
    ).toEqual({ te: 'trailers', 'content-type': 'application/grpc' });
    expect(endToEnd({ te: 'trailers', connection: 'te' })).toEqual({});
  });

  it('drops the extra names it is given, and response headers lose their hop-by-hop ones too', () => {
    expect(endToEnd({ host: 'a', accept: 'x' }, new Set(['host']))).toEqual({ accept: 'x' });
    expect(responseHeaders({ connection: 'keep-alive', 'keep-alive': 'timeout=5', etag: '"1"' })).toEqual({
      etag: '"1"',
    });
  });
});
