/**
 * ns per request of the two header readings the proxy does on every request it applies them to,
 * beside the packages Express uses for them (`proxy-addr` and `cookie`, maintained by the Express
 * team), measured in the same process: the client address under `trustProxy` (off, and a CIDR list
 * with a two-hop `X-Forwarded-For`), and an affinity cookie read from a `Cookie` header of four.
 * This decides whether mcgravity uses those packages or its own code (docs/benchmarks.md).
 */
import { createRequire } from 'node:module';
import { readCookie } from '../src/proxy/affinity.js';
import { compileTrust, forwardedFor } from '../src/proxy/trust.js';
import { measure, ns, printTable } from './harness.js';

const require = createRequire(import.meta.url);
const proxyaddr = require('proxy-addr') as ((req: unknown, trust: unknown) => string) & {
  compile(list: string[]): unknown;
};
const cookie = require('cookie') as { parse(header: string): Record<string, string | undefined> };

export function runHeadersBench(): string {
  const header = 'theme=dark; lang=en-GB; mcg=Zm9vYmFyYmF6cXV4MTI; _ga=GA1.2.3456789.1234567890';
  const requestWith = (xff: string | undefined) => ({
    socket: { remoteAddress: '10.0.0.1' },
    connection: { remoteAddress: '10.0.0.1' },
    headers: xff === undefined ? {} : { 'x-forwarded-for': xff },
  });
  const cases: [string, string, string, unknown, unknown][] = [
    [
      'client address, trustProxy off',
      'mcgravity',
      'target(ctx.peer, undefined, ctx.trust).client',
      forwardedFor,
      { peer: '10.0.0.1', trust: compileTrust(false) },
    ],
    [
      'client address, trustProxy off',
      'proxy-addr',
      'target(ctx.req, ctx.trust)',
      proxyaddr,
      { req: requestWith(undefined), trust: () => false },
    ],
    [
      'client address, CIDR list, two hops',
      'mcgravity',
      'target(ctx.peer, ctx.xff, ctx.trust).client',
      forwardedFor,
      { peer: '10.0.0.1', xff: '203.0.113.9, 10.0.0.2', trust: compileTrust(['10.0.0.0/8']) },
    ],
    [
      'client address, CIDR list, two hops',
      'proxy-addr',
      'target(ctx.req, ctx.trust)',
      proxyaddr,
      { req: requestWith('203.0.113.9, 10.0.0.2'), trust: proxyaddr.compile(['10.0.0.0/8']) },
    ],
    ['affinity cookie of four', 'mcgravity', "target(ctx.header, 'mcg')", readCookie, { header }],
    ['affinity cookie of four', 'cookie', 'target.parse(ctx.header).mcg', cookie, { header }],
  ];
  const rows = cases.map(([what, who, body, target, ctx]) => {
    const result = measure(body, target, ctx, { ops: 300_000 });
    return [what, who === 'mcgravity' ? who : `_${who}_`, ns(result.nsPerOp)];
  });
  return printTable('Header readings: ns per request, same process', ['reading', 'code', 'ns/op'], rows);
}
