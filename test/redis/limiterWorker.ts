/**
 * One process of the shared-limit test: fires `count` concurrent consumes at a RateLimiter backed by
 * Redis and prints how many were allowed. Run by test/redis/RedisStore.test.ts.
 */
import { Redis } from 'ioredis';
import { RateLimiter } from '../../src/limit/RateLimiter.js';
import { RedisStore } from '../../src/redis/RedisStore.js';

const [port, count, limit] = process.argv.slice(2).map(Number) as [number, number, number];
const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true });
await client.connect();
const limiter = new RateLimiter({
  algorithm: 'fixed-window',
  limit,
  windowMs: '10m',
  store: new RedisStore({ client, onClose: () => client.quit() }),
});
// Both processes start together: say ready, then wait for the go signal on stdin.
process.stdout.write('ready\n');
await new Promise((resolve) => process.stdin.once('data', resolve));
const decisions = await Promise.all(Array.from({ length: count }, () => limiter.consume('shared-client')));
console.log(decisions.filter((d) => d.allowed).length);
await limiter.close();
