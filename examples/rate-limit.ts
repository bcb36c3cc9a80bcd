/**
 * Rate limiting an HTTP API per client address: 5 requests a minute with a token bucket, the
 * standard headers on every answer, and 429 with Retry-After and a JSON error when over the limit.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { RateLimiter, setRateLimitHeaders } from 'mcgravity';

const limiter = new RateLimiter({ algorithm: 'token-bucket', limit: 5, windowMs: '1m' });

const api = http.createServer(async (req, res) => {
  const decision = await limiter.consume(req.socket.remoteAddress ?? 'unknown');
  setRateLimitHeaders(res, decision);
  if (!decision.allowed) {
    res.writeHead(429, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ error: { code: 'ERATELIMITED', message: 'Too many requests, slow down' } }));
    return;
  }
  res.end('hello');
});
await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
const url = `http://127.0.0.1:${(api.address() as AddressInfo).port}/`;

for (let i = 1; i <= 7; i++) {
  const response = await fetch(url);
  const body = await response.text();
  const remaining = response.headers.get('ratelimit-remaining');
  const retryAfter = response.headers.get('retry-after');
  console.log(
    `request ${i}: ${response.status} remaining=${remaining}${retryAfter ? ` retry-after=${retryAfter}s` : ''} ${body}`,
  );
}
console.log(`limiter: ${JSON.stringify(limiter.stats())}`);
api.close();
