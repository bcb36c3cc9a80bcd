/**
 * `rate_limits` from the file, end to end in-process: a configuration parsed as the command parses
 * it, a Runtime serving it, real requests. Classes of clients (by client id, by address, exempt by
 * header), and a Redis store that two processes' worth of runtimes share.
 */
import pino from 'pino';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/cli/config/load.js';
import { Runtime } from '../../src/cli/Runtime.js';
import { cleanupAfterEach } from '../helpers/cleanup.js';
import { redisSkipReason, startRedis } from '../helpers/redis.js';
import { startUpstream, type Upstream } from '../helpers/upstreams.js';

const defer = cleanupAfterEach();
const quiet = pino({ level: 'silent' });

async function backend(): Promise<Upstream> {
  const server = await startUpstream((_req, res) => res.end('ok'));
  defer(() => server.close());
  return server;
}

async function runtime(text: string): Promise<{ url: string; runtime: Runtime }> {
  const config = parseConfig(text, 'proxy.yaml');
  const started = await Runtime.start('proxy.yaml', config, quiet);
  defer(() => started.close(0));
  return { url: started.addresses().web as string, runtime: started };
}

/** Statuses of `count` sequential GETs with `headers`. */
async function statuses(url: string, count: number, headers: Record<string, string> = {}) {
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const response = await request(`${url}/x`, { headers });
    out.push(response.statusCode);
    await response.body.dump();
  }
  return out;
}

const file = (port: number, rateLimits: string) => `
global: { metrics_port: 0 }
clusters:
  api:
    backends: [{ address: "127.0.0.1:${port}" }]
    rate_limits:
${rateLimits}
listeners:
  - { name: web, address: "127.0.0.1:0", cluster: api }
`;

describe('rate_limits in proxy.yaml', () => {
  it('limits each class of clients by its own rule, the first matching rule deciding', async () => {
    const { port } = await backend();
    const { url } = await runtime(
      file(
        port,
        `      rules:
        - { client_type: internal, bypass: true, match: { headers: { x-internal: "yes" } } }
        - { client_type: premium, identifier: client_id, limit: 4, window: 1m, match: { clients: [acme] } }
        - { client_type: standard, identifier: ip_address, limit: 2, window: 1m }`,
      ),
    );
    expect(await statuses(url, 5, { 'x-client-id': 'acme' })).toEqual([200, 200, 200, 200, 429]);
    // Everyone else shares the address's quota, whatever client id they claim.
    expect(await statuses(url, 3, { 'x-client-id': 'someone' })).toEqual([200, 200, 429]);
    expect(await statuses(url, 1)).toEqual([429]);
    expect(await statuses(url, 5, { 'x-internal': 'yes' })).toEqual([200, 200, 200, 200, 200]);

    const refused = await request(`${url}/x`);
    expect(refused.headers['ratelimit-limit']).toBe('2');
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect(await refused.body.json()).toMatchObject({ error: { code: 'ERATELIMITED' } });
  });

  it('queues a request over the limit with overflow_action: queue, and refuses when the queue is full', async () => {
    const { port } = await backend();
    const { url } = await runtime(
      file(
        port,
        `      rules: [{ client_type: all, limit: 1, window: 400ms }]
      overflow_action: queue
      queue_timeout: 5s
      queue_size: 1`,
      ),
    );
    const started = Date.now();
    // The second waits for the next token instead of a 429; the third finds the queue full.
    const answers = await Promise.all([0, 1, 2].map(() => statuses(url, 1)));
    expect(answers.flat().sort()).toEqual([200, 200, 429]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
  });

  const skip = redisSkipReason();
  it.skipIf(skip !== undefined)(
    `shares one limit between processes through store: redis ${skip ?? ''}`,
    async () => {
      const redis = await startRedis();
      defer(() => redis.stop());
      const { port } = await backend();
      const section = `      rules: [{ client_type: everyone, limit: 5, window: 1m }]
      store: { redis: "${redis.url}" }`;
      const a = await runtime(file(port, section));
      const b = await runtime(file(port, section));
      const seen = [...(await statuses(a.url, 3)), ...(await statuses(b.url, 3))];
      expect(seen).toEqual([200, 200, 200, 200, 200, 429]);
    },
  );

  it.each([
    [
      'a rule without a limit',
      '      rules: [{ client_type: a }]',
      /rules\[0\]\.limit: a rule needs a limit/,
    ],
    [
      'a bypass rule without a match',
      '      rules: [{ client_type: a, bypass: true }]',
      /rules\[0\]: a bypass rule needs a match/,
    ],
    [
      'a rule after a catch-all',
      '      rules: [{ client_type: a, limit: 1 }, { client_type: b, limit: 2 }]',
      /rules\[1\]: this rule never applies: rules\[0\] has no match/,
    ],
  ])('refuses %s, at its key', (_what, section, message) => {
    expect(() => parseConfig(file(1, section), 'proxy.yaml')).toThrow(message);
  });
});
