/**
 * A cluster in proxy.yaml: its backends, balancing, active and passive health, circuit breaker,
 * retries, connection pool, session affinity, rate limits and traffic split.
 */
import { z } from 'zod';
import { duration, headerMatch, headerName } from './values.js';

/** Algorithm names as proxy.yaml files write them (snake_case), one per library balancer. */
export const LOAD_BALANCING = [
  'round_robin',
  'weighted_round_robin',
  'random',
  'least_connections',
  'least_request',
  'peak_ewma',
  'consistent_hash',
  'maglev',
  'ip_hash',
  'geographic',
] as const;

const backend = z
  .strictObject({
    address: z.string().min(1).meta({
      description:
        'Where the backend listens: `host:port` (HTTP), or a URL (`https://host:port/prefix`; a path is prepended to forwarded paths).',
    }),
    id: z
      .string()
      .min(1)
      .optional()
      .meta({ description: 'Name in stats and the admin API. Default: `host:port`.' }),
    weight: z.number().min(0).default(1).meta({ description: 'Relative share of traffic; 0 takes none.' }),
    max_connections: z.number().int().min(1).optional().meta({
      description: 'Most connections to this backend (and requests in flight). Default: the pool’s.',
    }),
    zone: z.string().min(1).optional().meta({ description: 'Zone or region, for `geographic` balancing.' }),
    priority: z.number().int().min(0).default(0).meta({
      description: '0 for primaries; backups (1, 2…) take traffic only when the tiers before cannot.',
    }),
  })
  .meta({ description: 'One backend server.' });

const healthCheck = z
  .strictObject({
    enabled: z.boolean().default(true).meta({ description: 'Run active health checks.' }),
    type: z.enum(['http', 'tcp', 'grpc']).default('http').meta({
      description:
        '`http` (a request to `path`), `tcp` (a connection opens), or `grpc` (`grpc.health.v1.Health/Check` for `grpc_service`).',
    }),
    grpc_service: z
      .string()
      .default('')
      .meta({ description: 'With `type: grpc`: the service asked about (`""` for the whole server).' }),
    path: z
      .string()
      .startsWith('/')
      .default('/health')
      .meta({ description: 'Path requested on each backend.' }),
    method: z.enum(['GET', 'HEAD']).default('GET').meta({ description: 'Method of the check.' }),
    interval: duration('Time between checks of one backend.').default('10s'),
    timeout: duration('A check not answered within this fails.').default('5s'),
    healthy_threshold: z
      .number()
      .int()
      .min(1)
      .default(2)
      .meta({ description: 'Passing checks in a row that make a down backend up again.' }),
    unhealthy_threshold: z
      .number()
      .int()
      .min(1)
      .default(3)
      .meta({ description: 'Failing checks in a row that take a backend out.' }),
    expect_status: z
      .union([
        z.number().int().min(100).max(599),
        z.string(),
        z.array(z.union([z.number().int(), z.string()])),
      ])
      .default('2xx')
      .meta({ description: 'Statuses that pass: `200`, `"2xx"`, `"200-399"`, or a list.' }),
    expect_body: z
      .string()
      .optional()
      .meta({ description: 'Text the body must contain (`/regex/` for a pattern).' }),
    headers: z
      .record(headerName, z.string())
      .optional()
      .meta({ description: 'Headers sent with each check.' }),
  })
  .meta({ description: 'Active health checks.' });

const outlierDetection = z
  .strictObject({
    consecutive_5xx: z
      .union([z.number().int().min(1), z.literal(false)])
      .default(5)
      .meta({ description: '5xx answers or failures in a row that eject a backend; `false` for none.' }),
    consecutive_gateway_errors: z
      .union([z.number().int().min(1), z.literal(false)])
      .default(5)
      .meta({ description: '502, 503, 504 or connection failures in a row that eject a backend.' }),
    consecutive_local_failures: z
      .union([z.number().int().min(1), z.literal(false)])
      .default(5)
      .meta({ description: 'Connection failures, resets or timeouts in a row that eject a backend.' }),
    interval: duration('How often ejections are reconsidered.').default('10s'),
    base_ejection_time: duration('First ejection’s length; each later one is longer.').default('30s'),
    max_ejection_time: duration('Longest ejection.').default('300s'),
    max_ejection_percent: z
      .number()
      .min(0)
      .max(100)
      .default(10)
      .meta({ description: 'Most backends ejected at once, in percent of the cluster (at least one).' }),
  })
  .meta({ description: 'Passive health: backends that fail real requests are ejected for a while.' });

export const circuitBreaker = z
  .strictObject({
    failure_threshold: z
      .number()
      .int()
      .min(1)
      .default(5)
      .meta({ description: 'Failures in a row that open the circuit.' }),
    failure_rate_threshold: z.number().gt(0).max(1).optional().meta({
      description:
        'Share of failures (0–1) over `window` that opens it too, once `minimum_requests` were seen.',
    }),
    window: duration('Window of `failure_rate_threshold`.').default('10s'),
    minimum_requests: z
      .number()
      .int()
      .min(1)
      .default(10)
      .meta({ description: 'Requests in the window before the failure rate counts.' }),
    recovery_timeout: duration('Time open before trial requests are let through (half-open).').default('10s'),
    half_open_max_requests: z
      .number()
      .int()
      .min(1)
      .default(1)
      .meta({ description: 'Trial requests at once while half-open.' }),
    success_threshold: z
      .number()
      .int()
      .min(1)
      .default(1)
      .meta({ description: 'Trial successes that close the circuit.' }),
  })
  .meta({ description: 'One circuit breaker per backend.' });

const RETRY_ON = ['5xx', 'gateway-error', 'reset', 'connect-failure', 'timeout', 'grpc-unavailable'] as const;

const retryPolicy = z
  .strictObject({
    attempts: z
      .number()
      .int()
      .min(1)
      .max(10)
      .default(3)
      .meta({ description: 'Attempts in all, the first included.' }),
    per_try_timeout: duration('Time each attempt has for the response headers.').optional(),
    retry_on: z
      .union([z.string(), z.array(z.union([z.enum(RETRY_ON), z.number().int().min(100).max(599)]))])
      .default('connect-failure,reset,gateway-error,grpc-unavailable')
      .meta({
        description: `What is retried (idempotent requests only): a comma list or array of ${RETRY_ON.map((c) => `\`${c}\``).join(', ')} and statuses.`,
      }),
    budget_percent: z
      .number()
      .min(0)
      .max(100)
      .default(20)
      .meta({ description: 'Retries allowed, in percent of the requests of the last 10 s.' }),
    min_retries_per_second: z
      .number()
      .min(0)
      .default(10)
      .meta({ description: 'Retries always allowed per second, whatever the budget.' }),
    backoff_base: duration('First retry’s largest delay (full jitter).').default('25ms'),
    backoff_max: duration('Largest delay of any retry.').default('250ms'),
  })
  .meta({ description: 'Retries on another backend.' });

const connectionPool = z
  .strictObject({
    max_connections: z
      .number()
      .int()
      .min(1)
      .default(128)
      .meta({ description: 'Most connections per backend.' }),
    connect_timeout: duration('Time to open a connection.').default('5s'),
    keepalive_timeout: duration('Idle connections are closed after this.').default('60s'),
    pipelining: z
      .number()
      .int()
      .min(0)
      .default(1)
      .meta({ description: 'Requests in flight per connection.' }),
  })
  .meta({ description: 'Connections to each backend.' });

const cookieAffinity = z.strictObject({
  name: z.string().min(1).meta({ description: 'Cookie name.' }),
  max_age: duration('Cookie lifetime; none makes a session cookie.').optional(),
  secure: z.boolean().optional().meta({ description: 'Mark it `Secure` (default: on HTTPS listeners).' }),
  same_site: z.enum(['strict', 'lax', 'none']).default('lax').meta({ description: 'SameSite attribute.' }),
  domain: z.string().optional().meta({ description: 'Domain attribute.' }),
  path: z.string().default('/').meta({ description: 'Path attribute.' }),
});

const mcpAffinity = z.strictObject({
  mode: z.enum(['stateless', 'table']).default('stateless').meta({
    description:
      '`stateless` prefixes session ids with an endpoint token (survives reloads and replicas); `table` remembers them.',
  }),
  max_sessions: z
    .number()
    .int()
    .min(1)
    .default(100_000)
    .meta({ description: 'Sessions remembered per cluster.' }),
  session_idle: duration('A session unused this long is forgotten.').default('1h'),
  idempotent_tools: z
    .array(z.string())
    .optional()
    .meta({ description: 'Tools whose calls may be retried elsewhere.' }),
});

export const sessionAffinity = z
  .union([
    z.boolean(),
    z.enum(['ip', 'mcp']),
    z.strictObject({ cookie: z.union([z.string().min(1), cookieAffinity]) }),
    z.strictObject({ header: headerName }),
    z.strictObject({ mcp: mcpAffinity }),
  ])
  .meta({
    description:
      'Keep a client on one backend: `true` or `ip` (by address), `{ cookie: name }`, `{ header: name }`, `mcp` (by MCP session), or `false`.',
  });

const rateLimitRule = z.strictObject({
  client_type: z
    .string()
    .regex(/^[A-Za-z0-9_.-]+$/, { error: 'expected a name of letters, digits, "_", "." or "-"' })
    .meta({ description: 'Name of this class of clients (in decisions, metrics and Redis keys).' }),
  identifier: z
    .union([z.enum(['client_id', 'ip_address']), z.string().regex(/^header:[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/)])
    .default('ip_address')
    .meta({
      description:
        'What counts as one client: `ip_address`, `client_id` (the client id header), or `header:<name>`.',
    }),
  match: z
    .strictObject({
      headers: headerMatch.optional(),
      clients: z.array(z.string()).optional().meta({ description: 'Client identifiers this rule is for.' }),
    })
    .optional()
    .meta({ description: 'Which requests belong to this class (default: all of them).' }),
  limit: z.number().int().min(1).optional().meta({ description: 'Requests per window (not with `bypass`).' }),
  window: duration('The window.').default('1m'),
  burst: z
    .number()
    .int()
    .min(1)
    .optional()
    .meta({ description: 'Token bucket: largest burst. Default: `limit`.' }),
  algorithm: z.enum(['token_bucket', 'sliding_window', 'fixed_window']).default('token_bucket'),
  bypass: z.boolean().default(false).meta({ description: 'Requests of this class are never limited.' }),
});

type RateLimitRuleConfig = z.output<typeof rateLimitRule>;

/** What the types cannot say about a list of rules: each is reachable, and does what it says. */
function checkRules(rules: readonly RateLimitRuleConfig[], ctx: z.core.$RefinementCtx): void {
  rules.forEach((rule, i) => {
    const issue = (message: string, key?: string) =>
      ctx.addIssue({ code: 'custom', message, path: key === undefined ? [i] : [i, key] });
    if (!rule.bypass && rule.limit === undefined) issue('a rule needs a limit (or bypass: true)', 'limit');
    if (rule.bypass && rule.limit !== undefined) issue('a bypass rule takes no limit', 'limit');
    if (rule.bypass && rule.match === undefined)
      issue('a bypass rule needs a match (headers or clients): without one no request is limited');
    const catchAll = rules.findIndex((r, j) => j < i && r.match === undefined);
    if (catchAll !== -1)
      issue(`this rule never applies: rules[${catchAll}] has no match and takes every request first`);
  });
}

export const rateLimits = z
  .strictObject({
    rules: z.array(rateLimitRule).min(1).superRefine(checkRules).meta({
      description:
        'Classes of clients, tried in order: the first whose `match` holds decides (its limit, or no limit with `bypass`); a request no rule matches is not limited.',
    }),
    enforcement: z.enum(['strict', 'fail_open']).default('fail_open').meta({
      description: 'When the store fails: `fail_open` lets requests through, `strict` refuses them.',
    }),
    overflow_action: z
      .enum(['reject', 'queue'])
      .default('reject')
      .meta({ description: '`reject` answers 429; `queue` holds the request until it fits (bounded).' }),
    queue_size: z
      .number()
      .int()
      .min(1)
      .default(100)
      .meta({ description: 'With `queue`: most waiting per client.' }),
    queue_timeout: duration('With `queue`: longest wait before 429.').default('10s'),
    store: z
      .union([z.literal('memory'), z.strictObject({ redis: z.string().regex(/^rediss?:\/\//) })])
      .default('memory')
      .meta({ description: '`memory` (per process) or `{ redis: "redis://host:6379" }` (shared).' }),
    max_keys: z
      .number()
      .int()
      .min(1)
      .default(100_000)
      .meta({ description: 'Memory store: most clients tracked per rule.' }),
  })
  .meta({ description: 'Rate limits on requests to this cluster.' });

export const trafficSplit = z
  .strictObject({
    splits: z
      .array(
        z.strictObject({
          backend_group: z.string().min(1).meta({ description: 'A cluster name.' }),
          percentage: z
            .number()
            .min(0)
            .max(100)
            .default(0)
            .meta({ description: 'Share of the unmatched traffic.' }),
          match_criteria: z
            .strictObject({ headers: headerMatch })
            .optional()
            .meta({ description: 'Requests with these headers always go to this group.' }),
        }),
      )
      .min(1),
    fallback_group: z
      .string()
      .min(1)
      .optional()
      .meta({ description: 'Cluster that takes what the percentages leave (default: this cluster).' }),
  })
  .meta({ description: 'Send part of this cluster’s traffic to other clusters (canaries, A/B tests).' });

const dnsDiscovery = z
  .strictObject({
    name: z.string().min(1).max(253).meta({
      description:
        'The name to resolve: a host name, or an SRV name such as `_http._tcp.api.default.svc.cluster.local`.',
    }),
    type: z.enum(['A', 'AAAA', 'A+AAAA', 'SRV']).default('A').meta({
      description:
        'Address records (each address a backend on `port`), or SRV records (targets, ports, priorities and weights).',
    }),
    port: z.number().int().min(1).max(65_535).optional().meta({
      description: 'The backends’ port, for address records. Default: 80, or 443 with `scheme: https`.',
    }),
    scheme: z
      .enum(['http', 'https'])
      .default('http')
      .meta({ description: 'How the backends are spoken to.' }),
    target_type: z
      .enum(['A', 'AAAA', 'A+AAAA'])
      .default('A')
      .meta({ description: 'How SRV targets are resolved to addresses.' }),
    min_ttl: duration('Shortest time between look-ups, whatever the TTL.').default('5s'),
    max_ttl: duration('Longest time between look-ups, whatever the TTL; also the longest back-off.').default(
      '5m',
    ),
    servers: z
      .array(z.string().min(1))
      .min(1)
      .optional()
      .meta({ description: 'DNS servers (`10.0.0.2`, `127.0.0.1:5353`). Default: the system’s.' }),
    timeout: duration('Time to wait for one answer.').default('2s'),
  })
  .meta({ description: 'Backends from DNS, looked up again as the records expire.' });

const fileDiscovery = z
  .strictObject({
    path: z.string().min(1).meta({
      description:
        'A JSON or YAML file (by extension) with a list of backends (`url`, `id`, `weight`, `zone`, `priority`, `maxConnections`), relative to this file.',
    }),
    interval: duration('Longest time between reads when no change is reported.').default('10s'),
  })
  .meta({ description: 'Backends from a file that something else writes, read again when it changes.' });

export const discovery = z
  .union([z.strictObject({ dns: dnsDiscovery }), z.strictObject({ file: fileDiscovery })])
  .meta({
    description:
      'Where backends come from besides `backends`: `{ dns: … }` or `{ file: … }`. Changes are applied as they are found; a failed look-up (or an empty answer, unless `allow_empty`) keeps the last good set.',
  });

export const cluster = z
  .strictObject({
    load_balancing: z
      .enum(LOAD_BALANCING)
      .default('least_request')
      .meta({ description: 'The algorithm (see docs/algorithms.md); `geographic` prefers `global.zone`.' }),
    protocol: z.enum(['http1', 'h2', 'h2c', 'grpc', 'tcp']).default('http1').meta({
      description:
        'How backends are spoken to: `http1`, `h2` (HTTP/2 over TLS, `https://` backends), `h2c` (cleartext HTTP/2), `grpc` (HTTP/2: h2c, or h2 for `https://` backends), or `tcp` (connections relayed, for a `tcp` listener).',
    }),
    backends: z
      .array(backend)
      .default([])
      .meta({ description: 'The servers (besides those `discovery` finds).' }),
    discovery: discovery.optional(),
    allow_empty: z.boolean().default(false).meta({
      description:
        'Allow no backends (added later by the admin API), and let an empty discovery answer remove every backend it found.',
    }),
    health_check: z.union([healthCheck, z.literal(false)]).optional(),
    outlier_detection: z.union([outlierDetection, z.literal(false)]).prefault({}),
    circuit_breaker: z.union([circuitBreaker, z.literal(false)]).optional(),
    retry_policy: z.union([retryPolicy, z.literal(false)]).prefault({}),
    connection_pool: connectionPool.prefault({}),
    session_affinity: sessionAffinity.optional(),
    rate_limits: rateLimits.optional(),
    traffic_split: trafficSplit.optional(),
    slow_start: duration('A recovered backend’s weight ramps up over this.').default(0),
    panic_threshold: z
      .number()
      .min(0)
      .max(100)
      .default(50)
      .meta({ description: 'Below this percent of eligible backends, balance across all of them.' }),
  })
  .meta({ description: 'A named set of backends and how to balance them.' });
