import { describe, expect, it } from 'vitest';
import { normalizeBackend } from '../../src/core/endpoint.js';

describe('normalizeBackend', () => {
  it('accepts a URL string and fills defaults', () => {
    expect(normalizeBackend('http://127.0.0.1:3000')).toEqual({
      id: '127.0.0.1:3000',
      url: 'http://127.0.0.1:3000',
      weight: 1,
      priority: 0,
    });
  });

  it('keeps every given field', () => {
    const metadata = { region: 'eu' };
    expect(
      normalizeBackend({
        url: 'https://a.example:8443/mcp',
        id: 'a',
        weight: 2.5,
        zone: 'z1',
        priority: 1,
        maxConnections: 50,
        metadata,
      }),
    ).toEqual({
      id: 'a',
      url: 'https://a.example:8443/mcp',
      weight: 2.5,
      zone: 'z1',
      priority: 1,
      maxConnections: 50,
      metadata,
    });
  });

  it.each([
    [{ url: 'not a url' }, /backends\[1\]\.url must be an absolute http\(s\) URL/],
    [{ url: 'ftp://x' }, /backends\[1\]\.url must use http:, https: or tcp:/],
    [{ url: 'http://x', weight: -1 }, /backends\[1\]\.weight must be a finite number >= 0, got -1/],
    [{ url: 'http://x', weight: Number.POSITIVE_INFINITY }, /backends\[1\]\.weight/],
    [{ url: 'http://x', weight: '2' }, /backends\[1\]\.weight must be a finite number >= 0, got "2"/],
    [{ url: 'http://x', priority: 0.5 }, /backends\[1\]\.priority must be an integer >= 0/],
    [{ url: 'http://x', maxConnections: 0 }, /backends\[1\]\.maxConnections must be an integer >= 1/],
    [{ url: 'http://x', id: '' }, /backends\[1\]\.id must be a non-empty string/],
    [{ url: 'http://x', zone: 3 }, /backends\[1\]\.zone must be a string/],
  ])('rejects %j naming the field', (input, message) => {
    expect(() => normalizeBackend(input as never, 'backends[1]')).toThrow(message);
  });
});
