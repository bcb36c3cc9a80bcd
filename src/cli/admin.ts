/**
 * The command's admin listener, the same in a single process and in the primary of several
 * workers: everything `createAdmin` serves, the `traffic-split`, `rate-limits` and
 * `circuit-breaker` settings of each cluster, the audit log, and with `stats_enabled: false` the
 * probes only.
 */
import http, {
  type IncomingMessage,
  type RequestListener,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { Logger } from 'pino';
import { type AdminChange, type AdminCluster, type AdminSetting, createAdmin } from '../admin/createAdmin.js';
import type { ProxyMetricsSource } from '../admin/metrics.js';
import type { RateLimiterStats } from '../limit/RateLimiter.js';
import type { TcpProxyStats } from '../tcp/createTcpProxy.js';
import { checkConfig } from './config/load.js';
import type { ProxyConfig } from './config/schema.js';
import { closeServer, listenOn, urlOf } from './servers.js';

/** A secret from the configuration, or from the environment variable it names. */
export function secretOf(
  value: string | undefined,
  env: string | undefined,
  what: string,
): string | undefined {
  if (value !== undefined) return value;
  if (env === undefined) return undefined;
  const fromEnv = process.env[env];
  if (fromEnv === undefined || fromEnv.length < 16)
    throw new Error(`${what}: environment variable ${env} must hold at least 16 characters`);
  return fromEnv;
}

/** What the admin listener serves, and how a settings change is applied. */
export interface AdminHost {
  readonly file: string;
  readonly config: ProxyConfig;
  readonly clusters: Readonly<Record<string, AdminCluster>>;
  readonly proxy: ProxyMetricsSource;
  readonly limiters: Readonly<Record<string, { stats(): RateLimiterStats }>>;
  /** TCP listeners' proxies, by listener name (absent in the primary of workers). */
  readonly tcpProxies?: Readonly<Record<string, { stats(): TcpProxyStats }>>;
  readonly audit: ((change: AdminChange) => void) | undefined;
  readonly log: Logger;
  /** Applies a configuration changed through the API (backends changed through it stay). */
  apply(next: ProxyConfig): Promise<{ clusters: Record<string, string[]> }>;
}

/**
 * A section of a cluster that the admin API reads and changes. A change is the running
 * configuration with that section replaced (`null` removes it), checked like a file and applied
 * like a reload. The file wins: the next SIGHUP applies the file as it is.
 */
function setting(
  host: AdminHost,
  section: 'traffic_split' | 'rate_limits' | 'circuit_breaker',
): AdminSetting {
  return {
    read: (cluster) => host.config.clusters[cluster]?.[section] ?? null,
    write: async (cluster, value) => {
      const next = structuredClone(host.config);
      const settings = next.clusters[cluster] as Record<string, unknown>;
      if (value === null) delete settings[section];
      else settings[section] = value;
      const summary = await host.apply(checkConfig(next, host.file, 'refused:'));
      host.log.info({ cluster, section, ...summary.clusters }, 'changed through the admin API');
    },
  };
}

/** The admin listener's request handler for `host` as it is now. */
export function adminHandler(host: AdminHost): RequestListener {
  const global = host.config.global;
  const token = secretOf(global.admin_token, global.admin_token_env, 'global.admin_token_env');
  const admin = createAdmin({
    clusters: host.clusters,
    proxy: host.proxy,
    limiters: host.limiters,
    ...(host.tcpProxies === undefined ? {} : { tcpProxies: host.tcpProxies }),
    settings: {
      'traffic-split': setting(host, 'traffic_split'),
      'rate-limits': setting(host, 'rate_limits'),
      'circuit-breaker': setting(host, 'circuit_breaker'),
    },
    ...(host.audit === undefined ? {} : { onChange: host.audit }),
    ...(token === undefined ? {} : { token }),
  });
  if (global.stats_enabled) return admin;
  // Without stats, the listener is for probes only.
  return (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/health' || path === '/ready') return admin(req, res);
    res.writeHead(404, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        error: { code: 'ENOTFOUND', message: 'stats are disabled (global.stats_enabled)' },
      }),
    );
  };
}

/**
 * The admin listener's server. Its handler is swapped on each reload (new clusters, a new token)
 * while the server and its connections stay.
 */
export class AdminListener {
  #server: Server | undefined;
  #handler: RequestListener | undefined;

  /** Serves `handler` from now on. */
  set handler(handler: RequestListener) {
    this.#handler = handler;
  }

  /** Listens on `global.metrics_address` and `global.metrics_port`. */
  async open(global: ProxyConfig['global']): Promise<void> {
    const server = http.createServer((req, res) => this.#handler?.(req, res));
    this.#server = server;
    await listenOn(server, `${global.metrics_address}:${global.metrics_port}`);
  }

  /** Where it listens, once open. */
  url(): string | undefined {
    return this.#server === undefined ? undefined : urlOf(this.#server, false);
  }

  async close(): Promise<void> {
    if (this.#server !== undefined) await closeServer(this.#server);
  }
}
