import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { RateLimiter } from '../../src/limit/RateLimiter.js';
import { checkRateLimits, consumeRateLimit, type ProxyRateLimits } from '../../src/proxy/rateLimits.js';

function request(headers: Record<string, string> = {}): IncomingMessage {
  return { headers } as unknown as IncomingMessage;
}

/** Sends `count` requests and returns how many were let through (undefined: not limited at all). */
async function admitted(
  limits: ProxyRateLimits,
  count: number,
  headers: Record<string, string>,
  client = '10.0.0.1',
): Promise<number | undefined> {
  const compiled = checkRateLimits(limits, 'rateLimit');
  let allowed = 0;
  for (let i = 0; i < count; i++) {
    const decision = consumeRateLimit(compiled, request(headers), client);
    if (decision === undefined) return undefined;
    if ((await decision).allowed) allowed++;
  }
  return allowed;
}

describe('proxy rate-limit classes', () => {
  // The product's example: premium clients by id, everyone else by address, internal services free.
  const classes = (): ProxyRateLimits => [
    { exempt: true, match: { headers: { 'x-internal': 'yes' } } },
    {
      limiter: new RateLimiter({ rules: [{ name: 'premium', limit: 5, windowMs: '1m' }] }),
      key: 'header:x-client-id',
      match: { keys: ['acme', 'globex'] },
    },
    { limiter: new RateLimiter({ rules: [{ name: 'standard', limit: 2, windowMs: '1m' }] }) },
  ];

  it.each([
    ['a premium client gets the premium limit', { 'x-client-id': 'acme' }, 5],
    ['an unknown client id falls to the address limit', { 'x-client-id': 'someone' }, 2],
    ['no client id: the address limit', {}, 2],
    ['an internal service is not limited', { 'x-internal': 'yes', 'x-client-id': 'acme' }, undefined],
  ])('%s', async (_name, headers, expected) => {
    expect(await admitted(classes(), 8, headers)).toBe(expected);
  });

  it('counts each client apart within a class', async () => {
    const limits = checkRateLimits(classes(), 'rateLimit');
    const take = async (client: string) => (await consumeRateLimit(limits, request(), client))?.allowed;
    expect([await take('a'), await take('a'), await take('a'), await take('b')]).toEqual([
      true,
      true,
      false,
      true,
    ]);
  });

  it('names the deciding rule in the decision', async () => {
    const limits = checkRateLimits(classes(), 'rateLimit');
    const decision = await consumeRateLimit(limits, request({ 'x-client-id': 'globex' }), '10.0.0.1');
    expect(decision).toMatchObject({ allowed: true, rule: 'premium', limit: 5, remaining: 4 });
  });

  it('leaves a request no class matches unlimited', async () => {
    const only = [
      {
        limiter: new RateLimiter({ limit: 1, windowMs: '1m' }),
        match: { headers: { 'x-tier': /^free$/i } },
      },
    ];
    expect(await admitted(only, 3, { 'x-tier': 'paid' })).toBeUndefined();
    expect(await admitted(only, 3, { 'x-tier': 'FREE' })).toBe(1);
  });

  it('keeps the bypass list of a single limit', async () => {
    const limit = { limiter: new RateLimiter({ limit: 1, windowMs: '1m' }), bypass: ['10.0.0.9'] };
    expect(await admitted(limit, 3, {}, '10.0.0.9')).toBeUndefined();
    expect(await admitted(limit, 3, {}, '10.0.0.1')).toBe(1);
  });

  it.each([
    [[], /rateLimit must not be an empty list/],
    [[{ exempt: true }], /rateLimit\[0\]\.match is required/],
    [[{ exempt: false, match: {} }], /rateLimit\[0\]\.exempt must be true/],
    [[{ limiter: {} }], /rateLimit\[0\]\.limiter must be a RateLimiter/],
    [
      { limiter: new RateLimiter({ limit: 1, windowMs: 1 }), match: { clients: ['a'] } },
      /rateLimit\.match: unknown option "clients"/,
    ],
    [{ limiter: new RateLimiter({ limit: 1, windowMs: 1 }), key: 'cookie:x' }, /rateLimit\.key must be/],
  ])('rejects %j', (value, message) => {
    expect(() => checkRateLimits(value as never, 'rateLimit')).toThrow(message);
  });
});
