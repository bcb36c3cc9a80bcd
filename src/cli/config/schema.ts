/**
 * The proxy's configuration file (`proxy.yaml`), as one schema: it validates a file, fills in its
 * defaults, and is turned into the published JSON Schema (`schema/proxy.schema.json`, for editors)
 * and the reference tables of docs/configuration.md. Keys are snake_case, as in the product's
 * original `proxy.yaml`; every duration takes `"500ms"`, `"10s"`, `"1m"`… or milliseconds, and every
 * size `"512KB"`, `"100MB"`… or bytes.
 *
 * Defaults written here are the library's own, so that `mcgravity --check` prints what will run.
 */
import { z } from 'zod';

const DURATION = /^\s*(?:(?:\d+(?:\.\d+)?|\.\d+)(?:ms|s|m|h|d))+\s*$|^\s*\d+(?:\.\d+)?\s*$/;
const SIZE = /^\s*\d+(?:\.\d+)?\s*(?:B|KB|MB|GB|KiB|MiB|GiB|K|M|G)?\s*$/i;

/** A duration: a number of milliseconds or a string such as `"10s"`. */
const duration = (description: string) =>
  z
    .union(
      [
        z.number().nonnegative(),
        z.string().regex(DURATION, { error: 'expected a duration such as "500ms", "10s" or "1m30s"' }),
      ],
      { error: 'expected a duration such as "500ms", "10s" or "1m30s", or milliseconds' },
    )
    .meta({ description, format: 'duration' });

/** A size: a number of bytes or a string such as `"100MB"`. */
const size = (description: string) =>
  z
    .union(
      [
        z.number().int().nonnegative(),
        z.string().regex(SIZE, { error: 'expected a size such as "512KB" or "100MB"' }),
      ],
      { error: 'expected a size such as "512KB" or "100MB", or bytes' },
    )
    .meta({ description, format: 'size' });

const port = z.number().int().min(0).max(65_535);
const headerName = z.string().regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, { error: 'expected a header name' });
const headerMatch = z.record(headerName, z.string()).meta({
  description: 'Header name → value it must equal; a value `/like this/i` is a regular expression.',
});

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

const circuitBreaker = z
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

const RETRY_ON = ['5xx', 'gateway-error', 'reset', 'connect-failure', 'timeout'] as const;

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
      .default('connect-failure,reset,gateway-error')
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

const sessionAffinity = z
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

const rateLimits = z
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

const trafficSplit = z
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

const cluster = z
  .strictObject({
    load_balancing: z
      .enum(LOAD_BALANCING)
      .default('least_request')
      .meta({ description: 'The algorithm (see docs/algorithms.md); `geographic` prefers `global.zone`.' }),
    backends: z.array(backend).meta({ description: 'The servers.' }),
    allow_empty: z
      .boolean()
      .default(false)
      .meta({ description: 'Allow no backends (added later by the admin API).' }),
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

const routeMatch = z.strictObject({
  path_prefix: z
    .string()
    .startsWith('/')
    .optional()
    .meta({ description: 'Path segment prefix (`/api` matches `/api/x`).' }),
  host: z.string().optional().meta({ description: 'Host, or `*.example.com`.' }),
  method: z.union([z.string(), z.array(z.string())]).optional(),
  headers: headerMatch.optional(),
  mcp_method: z
    .string()
    .optional()
    .meta({ description: 'MCP method (`tools/call`…), from the `Mcp-Method` header.' }),
  mcp_name: z
    .string()
    .optional()
    .meta({ description: 'MCP tool, prompt or resource, from the `Mcp-Name` header.' }),
});

const route = z.strictObject({
  name: z.string().min(1).optional(),
  match: routeMatch.prefault({}),
  cluster: z.string().min(1).meta({ description: 'Cluster name.' }),
  strip_prefix: z
    .boolean()
    .default(false)
    .meta({ description: 'Remove `match.path_prefix` from the forwarded path.' }),
});

const listenerTimeouts = z.strictObject({
  first_byte: duration('Time for a backend’s response headers, per attempt.').default('30s'),
  idle: duration('Longest silence on a body before both sides are cut.').default('60s'),
  client_headers: duration('Time a client has to send its request headers.').default('10s'),
  tunnel_idle: duration('Longest silence on a WebSocket; 0 for none.').default(0),
});

const listener = z
  .strictObject({
    name: z.string().min(1),
    address: z
      .string()
      .regex(/^(?:\[[0-9a-fA-F:.]+\]|[^\s:[\]]*):\d{1,5}$/, {
        error: 'expected host:port, such as "0.0.0.0:8080"',
      })
      .meta({ description: '`host:port` to listen on (`[::]:8080` for IPv6).' }),
    protocol: z.enum(['http', 'https']).default('http').meta({ description: '`https` needs `ssl` files.' }),
    cluster: z
      .string()
      .min(1)
      .optional()
      .meta({ description: 'The cluster for every request (or use `routes`).' }),
    routes: z
      .array(route)
      .optional()
      .meta({ description: 'First match wins; a request matching none gets 404.' }),
    ssl: z
      .strictObject({
        enabled: z.boolean().default(true),
        cert_file: z.string().min(1).meta({ description: 'PEM certificate chain; re-read on SIGHUP.' }),
        key_file: z.string().min(1).meta({ description: 'PEM private key; re-read on SIGHUP.' }),
      })
      .optional()
      .meta({ description: 'TLS: with `enabled`, the listener speaks HTTPS.' }),
    session_affinity: sessionAffinity.optional(),
    timeouts: listenerTimeouts.prefault({}),
    max_body_size: size('Largest request body; larger gets 413.').default('10MB'),
    request_id: z
      .union([headerName, z.literal(false)])
      .default('x-request-id')
      .meta({ description: 'Header carrying the request id, or `false`.' }),
    rewrite_host: z
      .boolean()
      .default(false)
      .meta({ description: 'Send the backend’s host as `Host` instead of the client’s.' }),
    trust_proxy: z
      .union([z.boolean(), z.number().int().min(0), z.array(z.string())])
      .optional()
      .meta({ description: 'Whose `X-Forwarded-*` to believe (default: `global.trust_proxy`).' }),
  })
  .meta({ description: 'A port the proxy serves.' });

const global = z
  .strictObject({
    log_level: z
      .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
      .default('info')
      .meta({ description: 'Level of the process log (stderr); `MCGRAVITY_LOG_LEVEL` overrides it.' }),
    stats_enabled: z
      .boolean()
      .default(true)
      .meta({ description: 'Serve `/metrics`, the stats API and the status page.' }),
    metrics_port: port
      .default(9090)
      .meta({ description: 'Port of the admin listener (health, metrics, API, status page).' }),
    metrics_address: z.string().default('127.0.0.1').meta({ description: 'Address of the admin listener.' }),
    admin_token: z
      .string()
      .min(16)
      .optional()
      .meta({ description: 'Bearer token for admin changes (16+ characters).' }),
    admin_token_env: z
      .string()
      .min(1)
      .optional()
      .meta({ description: 'Environment variable holding the admin token.' }),
    affinity_secret: z.string().min(16).optional().meta({
      description: 'Secret for affinity cookies and MCP session tokens; the same on every replica.',
    }),
    affinity_secret_env: z
      .string()
      .min(1)
      .optional()
      .meta({ description: 'Environment variable holding the affinity secret.' }),
    client_id_header: headerName
      .default('x-client-id')
      .meta({ description: 'Header naming the client, for `identifier: client_id`.' }),
    trust_proxy: z
      .union([z.boolean(), z.number().int().min(0), z.array(z.string())])
      .default(false)
      .meta({
        description: 'Whose `X-Forwarded-*` to believe: `true`, a hop count, or addresses and CIDRs.',
      }),
    zone: z
      .string()
      .min(1)
      .optional()
      .meta({ description: 'This proxy’s zone, for `geographic` balancing.' }),
    workers: z
      .union([z.number().int().min(1).max(256), z.literal('auto')])
      .default(1)
      .meta({ description: 'Worker processes sharing the listeners; `auto` for one per core.' }),
    shutdown_timeout: duration('On SIGTERM, time given to requests in flight.').default('30s'),
  })
  .meta({ description: 'Process-wide settings.' });

const accessLog = z
  .strictObject({
    enabled: z.boolean().default(true),
    format: z.literal('json').default('json').meta({ description: 'One JSON object per line.' }),
    path: z.string().min(1).default('stdout').meta({ description: 'A file, or `stdout`.' }),
    rotation: z
      .strictObject({
        max_size: size('Rotate when the file reaches this size.').default('100MB'),
        max_files: z.number().int().min(1).default(10).meta({ description: 'Rotated files kept.' }),
      })
      .optional(),
  })
  .meta({ description: 'One JSON line per request.' });

const auditLog = z
  .strictObject({
    enabled: z.boolean().default(true),
    path: z.string().min(1).default('stderr').meta({ description: 'A file, `stdout` or `stderr`.' }),
    compliance_mode: z.string().optional().meta({ description: 'A label copied into every audit line.' }),
    retention: z
      .string()
      .optional()
      .meta({ description: 'A label for your log pipeline; mcgravity never deletes audit lines.' }),
  })
  .meta({ description: 'One JSON line per change made through the admin API.' });

/** The whole file. */
export const configSchema = z
  .strictObject({
    $schema: z.string().optional().meta({ description: 'Path or URL of the JSON Schema, for editors.' }),
    global: global.prefault({}),
    clusters: z
      .record(z.string().regex(/^[A-Za-z0-9_.-]+$/), cluster)
      .meta({ description: 'Clusters by name.' }),
    listeners: z.array(listener).min(1),
    access_log: accessLog.optional(),
    audit_log: auditLog.optional(),
  })
  .meta({ title: 'mcgravity proxy configuration' });

/** A configuration file as written. */
export type ProxyFileInput = z.input<typeof configSchema>;
/** A configuration with its defaults filled in. */
export type ProxyConfig = z.output<typeof configSchema>;
export type ClusterConfig = ProxyConfig['clusters'][string];
export type ListenerConfig = ProxyConfig['listeners'][number];
export type BackendFileConfig = ClusterConfig['backends'][number];
export type RateLimitsConfig = NonNullable<ClusterConfig['rate_limits']>;
export type TrafficSplitConfig = NonNullable<ClusterConfig['traffic_split']>;
export type CircuitBreakerConfig = Exclude<NonNullable<ClusterConfig['circuit_breaker']>, false>;
export type SessionAffinityConfig = NonNullable<ClusterConfig['session_affinity']>;

/** The schema of one part, for the admin API's changes (validated like the file). */
export const partSchemas = { rateLimits, trafficSplit, circuitBreaker } as const;

/** The JSON Schema (draft 2020-12) of the file, for editors and `schema/proxy.schema.json`. */
export function jsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
}
