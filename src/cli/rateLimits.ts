/**
 * A cluster's `rate_limits` turned into the proxy's classes of clients: one RateLimiter per rule
 * (named after its `client_type`), an exemption for each `bypass` rule. The limiters hold the counts,
 * so they belong to the running process, not to one listener: every listener that sends to the
 * cluster shares them, and a reload that leaves the section unchanged keeps them.
 *
 * With `store: { redis }` the counts live in Redis (one connection per URL, shared by every cluster)
 * under `mcgravity:ratelimit:<cluster>:`, so that workers and replicas enforce one limit together.
 * ioredis is an optional peer dependency of mcgravity, loaded only when a file asks for Redis.
 */
import type { Duration } from '../core/duration.js';
import { RateLimiter, type RateLimiterOptions } from '../limit/RateLimiter.js';
import type { RateLimitAlgorithm } from '../limit/rules.js';
import type { ProxyRateLimit, ProxyRateLimitExemption, RateLimitKeySource } from '../proxy/rateLimits.js';
import { type RedisScriptClient, RedisStore } from '../redis/RedisStore.js';
import { headerMatches } from './build.js';
import type { ProxyConfig, RateLimitsConfig } from './config/schema.js';

type RuleConfig = RateLimitsConfig['rules'][number];

/** The library's name of each algorithm. */
const ALGORITHMS: Record<RuleConfig['algorithm'], RateLimitAlgorithm> = {
  token_bucket: 'token-bucket',
  sliding_window: 'sliding-window',
  fixed_window: 'fixed-window',
};

/** A cluster's rate limiting: its classes, and the limiters to close. */
export interface ClusterRateLimits {
  readonly classes: readonly (ProxyRateLimit | ProxyRateLimitExemption)[];
  readonly limiters: readonly RateLimiter[];
}

/** Redis connections by URL, opened on first use and closed together. */
export class RedisConnections {
  readonly #clients = new Map<string, Promise<RedisScriptClient & { quit(): Promise<unknown> }>>();

  /** A connected client for `url`. */
  get(url: string): Promise<RedisScriptClient> {
    let client = this.#clients.get(url);
    if (client === undefined) {
      client = connect(url);
      this.#clients.set(url, client);
    }
    return client;
  }

  async close(): Promise<void> {
    const clients = [...this.#clients.values()];
    this.#clients.clear();
    await Promise.all(clients.map(async (pending) => (await pending.catch(() => undefined))?.quit()));
  }
}

async function connect(url: string): Promise<RedisScriptClient & { quit(): Promise<unknown> }> {
  let Redis: typeof import('ioredis').Redis;
  try {
    ({ Redis } = await import('ioredis'));
  } catch {
    throw new Error(
      'rate_limits.store.redis needs the ioredis package: npm install ioredis (next to mcgravity)',
    );
  }
  // No offline queue: while Redis is away a request is decided by `enforcement` at once rather than
  // waiting for a reconnection.
  const client = new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    lazyConnect: true,
  });
  try {
    await client.connect();
  } catch (error) {
    client.disconnect();
    throw new Error(
      `rate_limits.store.redis: cannot connect to ${redactedUrl(url)}: ${(error as Error).message}`,
    );
  }
  return client;
}

/** A Redis URL without its password, for messages. */
function redactedUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'the configured URL';
  }
}

function keyOf(rule: RuleConfig, config: ProxyConfig): RateLimitKeySource {
  if (rule.identifier === 'ip_address') return 'ip';
  if (rule.identifier === 'client_id') return `header:${config.global.client_id_header}`;
  return rule.identifier as `header:${string}`;
}

/** The rate limiting of cluster `name`, with its limiters made (and connected, for Redis). */
export async function clusterRateLimits(
  name: string,
  section: RateLimitsConfig,
  config: ProxyConfig,
  redis: RedisConnections,
): Promise<ClusterRateLimits> {
  const store =
    section.store === 'memory'
      ? undefined
      : new RedisStore({
          client: await redis.get(section.store.redis),
          prefix: `mcgravity:ratelimit:${name}:`,
        });
  const limiters: RateLimiter[] = [];
  const classes = section.rules.map((rule): ProxyRateLimit | ProxyRateLimitExemption => {
    const key = keyOf(rule, config);
    const match: NonNullable<ProxyRateLimit['match']> = {};
    const headers = headerMatches(rule.match?.headers);
    if (headers !== undefined) match.headers = headers;
    if (rule.match?.clients !== undefined) match.keys = rule.match.clients;
    if (rule.bypass) return { exempt: true, key, match };
    const options: RateLimiterOptions = {
      rules: [
        {
          name: rule.client_type,
          algorithm: ALGORITHMS[rule.algorithm],
          limit: rule.limit as number,
          windowMs: rule.window as Duration,
          ...(rule.burst === undefined ? {} : { burst: rule.burst }),
        },
      ],
      overflow: section.overflow_action === 'queue' ? 'queue' : 'reject',
      onStoreError: section.enforcement === 'strict' ? 'deny' : 'allow',
    };
    if (section.overflow_action === 'queue') {
      options.maxQueue = section.queue_size;
      options.queueTimeoutMs = section.queue_timeout as Duration;
    }
    if (store === undefined) options.maxKeys = section.max_keys;
    else options.store = store;
    const limiter = new RateLimiter(options);
    limiters.push(limiter);
    return rule.match === undefined ? { limiter, key } : { limiter, key, match };
  });
  return { classes, limiters };
}
