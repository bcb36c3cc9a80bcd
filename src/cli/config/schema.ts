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
import { circuitBreaker, cluster, rateLimits, trafficSplit } from './sections/cluster.js';
import { listener } from './sections/listener.js';
import { duration, headerName, port, size } from './sections/values.js';

export { LOAD_BALANCING } from './sections/cluster.js';

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
/** A cluster's discovery section. */
export type DiscoveryConfig = NonNullable<ClusterConfig['discovery']>;

/** The schema of one part, for the admin API's changes (validated like the file). */
export const partSchemas = { rateLimits, trafficSplit, circuitBreaker } as const;

/** The JSON Schema (draft 2020-12) of the file, for editors and `schema/proxy.schema.json`. */
export function jsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
}
