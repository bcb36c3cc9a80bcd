import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import type { Cluster } from '../../src/cluster/Cluster.js';
import { compileMatch, compileSplit } from '../../src/proxy/routes.js';

const req = (headers: Record<string, string>, method = 'GET') =>
  ({ headers, method }) as unknown as IncomingMessage;
const fakeCluster = (name: string) => ({ name, request: () => undefined }) as unknown as Cluster;

describe('compileMatch', () => {
  it('matches a /g RegExp header condition on 10 requests of 10', () => {
    const matches = compileMatch({ headers: { 'x-tenant': /^acme$/g } }, 'routes[0].match');
    const hits = Array.from({ length: 10 }, () => matches(req({ 'x-tenant': 'acme' }), '/'));
    expect(hits).toEqual(Array(10).fill(true));
  });

  it.each([
    [{ pathPrefix: '/api' }, '/api/x', true],
    [{ pathPrefix: '/api' }, '/api?q=1', true],
    [{ pathPrefix: '/api' }, '/apix', false],
    [{ host: '*.example.com' }, '/', true],
    [{ method: ['POST', 'put'] }, '/', false],
    [{ mcpMethod: /^tools\//g }, '/', true],
  ] as const)('%j on %s: %s', (match, path, result) => {
    const request = req({ host: 'a.example.com:8080', 'mcp-method': 'tools/call' });
    expect(compileMatch(match as never, 'm')(request, path)).toBe(result);
  });

  it('names a header condition that is neither a string nor a RegExp', () => {
    expect(() => compileMatch({ headers: { x: 1 as never } }, 'routes[2].match')).toThrow(
      /routes\[2\]\.match\.headers\.x must be a string or a RegExp/,
    );
  });
});

describe('compileSplit', () => {
  it('sends header-pinned requests to their target and the rest by weight', () => {
    const stable = fakeCluster('stable');
    const canary = fakeCluster('canary');
    const pick = compileSplit(
      [
        { cluster: stable, weight: 9 },
        { cluster: canary, weight: 1, headers: { 'x-canary': /always/g } },
      ],
      'split',
    );
    expect(pick(req({ 'x-canary': 'always' }), 0)).toBe(canary);
    expect(pick(req({ 'x-canary': 'always' }), 0)).toBe(canary);
    expect(pick(req({}), 0.5)).toBe(stable);
    expect(pick(req({}), 0.95)).toBe(canary);
  });
});
