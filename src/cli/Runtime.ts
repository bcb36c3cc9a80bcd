/**
 * A running proxy process: the clusters of a configuration, a server and a proxy per listener, and
 * the admin listener. Built only from the library's public API: `createCluster`, `createProxy` with
 * `attach()` on servers made here (so that HTTPS works and a reload can hand a server to a new
 * proxy), and `createAdmin`.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http, {
  type IncomingMessage,
  type RequestListener,
  type Server,
  type ServerResponse,
} from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { createAdmin } from '../admin/createAdmin.js';
import type { ProxyMetricsSource } from '../admin/metrics.js';
import { type Cluster, createCluster } from '../cluster/Cluster.js';
import { parseDuration } from '../core/duration.js';
import { createProxy, type Proxy as ProxyInstance } from '../proxy/createProxy.js';
import { clusterOptions, proxyOptions } from './build.js';
import { fileFrom, listenAddress } from './config/addresses.js';
import type { ListenerConfig, ProxyConfig } from './config/schema.js';
import { accessLog, auditLog } from './logs.js';
import { type ClusterRateLimits, clusterRateLimits, RedisConnections } from './rateLimits.js';

/** One listener: its server, and the proxy serving on it now. */
interface RunningListener {
  readonly config: ListenerConfig;
  readonly server: Server;
  proxy: ProxyInstance;
}

/** A secret from the configuration, or from the environment variable it names. */
function secretOf(value: string | undefined, env: string | undefined, what: string): string | undefined {
  if (value !== undefined) return value;
  if (env === undefined) return undefined;
  const fromEnv = process.env[env];
  if (fromEnv === undefined || fromEnv.length < 16)
    throw new Error(`${what}: environment variable ${env} must hold at least 16 characters`);
  return fromEnv;
}

function tlsOf(listener: ListenerConfig, file: string): { cert: Buffer; key: Buffer } | undefined {
  const ssl = listener.ssl;
  if (ssl === undefined || !ssl.enabled) return undefined;
  return {
    cert: readFileSync(fileFrom(file, ssl.cert_file)),
    key: readFileSync(fileFrom(file, ssl.key_file)),
  };
}

async function listenOn(server: Server, address: string): Promise<void> {
  const { host, port } = listenAddress(address);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function urlOf(server: Server, tls: boolean): string {
  const { address, port, family } = server.address() as AddressInfo;
  const host = family === 'IPv6' ? `[${address}]` : address;
  return `${tls ? 'https' : 'http'}://${host}:${port}`;
}

/** The running process. */
export class Runtime {
  readonly #file: string;
  readonly #log: Logger;
  #config: ProxyConfig;
  #clusters: Record<string, Cluster> = {};
  #limits: Record<string, ClusterRateLimits> = {};
  readonly #redis = new RedisConnections();
  readonly #listeners = new Map<string, RunningListener>();
  #admin: Server | undefined;
  #adminHandler: RequestListener | undefined;
  readonly #affinitySecret: string;
  readonly #accessLog: ReturnType<typeof accessLog>;
  readonly #auditLog: ReturnType<typeof auditLog>;

  private constructor(file: string, config: ProxyConfig, log: Logger) {
    this.#file = file;
    this.#config = config;
    this.#log = log;
    const configured = secretOf(
      config.global.affinity_secret,
      config.global.affinity_secret_env,
      'global.affinity_secret_env',
    );
    // One secret for the life of the process, so that affinity cookies and MCP sessions outlive
    // reloads; replicas need a shared one.
    this.#affinitySecret =
      configured ?? process.env.MCGRAVITY_AFFINITY_SECRET ?? randomBytes(24).toString('base64url');
    if (configured === undefined && process.env.MCGRAVITY_AFFINITY_SECRET === undefined)
      log.warn(
        'no global.affinity_secret: affinity cookies and MCP session ids are valid in this process only; give every replica the same one',
      );
    // Accepted so that files in the product's format load, but not acted on yet: say so.
    if (config.audit_log?.enabled === true)
      log.warn('audit_log: this version does not write admin changes to the audit log yet');
    if (config.global.workers !== 1)
      log.warn({ workers: config.global.workers }, 'global.workers: this version runs one process');
    this.#accessLog = accessLog(config, file);
    this.#auditLog = auditLog(config, file);
  }

  /** Starts everything a configuration describes; on failure, closes what it had started. */
  static async start(file: string, config: ProxyConfig, log: Logger): Promise<Runtime> {
    const runtime = new Runtime(file, config, log);
    try {
      await runtime.#start();
    } catch (error) {
      await runtime.close(0);
      throw error;
    }
    return runtime;
  }

  /** The clusters now, by name. */
  get clusters(): Readonly<Record<string, Cluster>> {
    return this.#clusters;
  }

  /** Where each listener (and `admin`) serves. */
  addresses(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [name, listener] of this.#listeners)
      out[name] = urlOf(listener.server, listener.server instanceof https.Server);
    if (this.#admin !== undefined) out.admin = urlOf(this.#admin, false);
    return out;
  }

  async #start(): Promise<void> {
    const config = this.#config;
    for (const [name, cluster] of Object.entries(config.clusters))
      this.#clusters[name] = createCluster(
        clusterOptions(name, cluster, config, this.#log.child({ cluster: name })),
      );
    for (const [name, cluster] of Object.entries(config.clusters))
      if (cluster.rate_limits !== undefined)
        this.#limits[name] = await clusterRateLimits(name, cluster.rate_limits, config, this.#redis);
    for (const listener of config.listeners) {
      const tls = tlsOf(listener, this.#file);
      const server =
        tls === undefined
          ? http.createServer(serverOptions)
          : https.createServer({ ...serverOptions, ...tls });
      const proxy = this.#proxyFor(listener);
      proxy.attach(server);
      this.#listeners.set(listener.name, { config: listener, server, proxy });
      await listenOn(server, listener.address);
    }
    this.#adminHandler = this.#adminListener();
    const admin = http.createServer((req, res) => this.#adminHandler?.(req, res));
    this.#admin = admin;
    await listenOn(admin, `${config.global.metrics_address}:${config.global.metrics_port}`);
  }

  #proxyFor(listener: ListenerConfig): ProxyInstance {
    const accessLog = this.#accessLog;
    return createProxy(
      proxyOptions(listener, this.#config, this.#clusters, this.#limits, {
        logger: this.#log.child({ listener: listener.name }),
        affinitySecret: this.#affinitySecret,
        ...(accessLog === undefined ? {} : { accessLog }),
      }),
    );
  }

  /** What the admin listener reports of every listener's proxy, summed. */
  #metricsSource(): ProxyMetricsSource {
    const listeners = this.#listeners;
    return {
      get inflight() {
        let sum = 0;
        for (const { proxy } of listeners.values()) sum += proxy.inflight;
        return sum;
      },
      get tunnels() {
        let sum = 0;
        for (const { proxy } of listeners.values()) sum += proxy.tunnels;
        return sum;
      },
      mcpSessions() {
        const sessions: Record<string, Record<string, number>> = {};
        for (const { proxy } of listeners.values()) {
          for (const [cluster, endpoints] of Object.entries(proxy.mcpSessions())) {
            sessions[cluster] ??= {};
            const into = sessions[cluster];
            for (const [endpoint, count] of Object.entries(endpoints))
              into[endpoint] = (into[endpoint] ?? 0) + count;
          }
        }
        return sessions;
      },
    };
  }

  #adminListener(): RequestListener {
    const settings = this.#config.global;
    const token = secretOf(settings.admin_token, settings.admin_token_env, 'global.admin_token_env');
    const admin = createAdmin({
      clusters: this.#clusters,
      proxy: this.#metricsSource(),
      ...(token === undefined ? {} : { token }),
    });
    if (settings.stats_enabled) return admin;
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
   * Stops accepting, lets requests in flight finish for up to `timeoutMs`, then closes every
   * cluster and log.
   */
  async close(timeoutMs = parseDuration(this.#config.global.shutdown_timeout)): Promise<void> {
    await Promise.all([...this.#listeners.values()].map(({ proxy }) => proxy.close({ timeoutMs })));
    this.#listeners.clear();
    if (this.#admin !== undefined) {
      const admin = this.#admin;
      await new Promise<void>((resolve) => {
        admin.close(() => resolve());
        admin.closeAllConnections();
      });
    }
    await Promise.all(Object.values(this.#clusters).map((cluster) => cluster.close({ timeoutMs: 0 })));
    await Promise.all(
      Object.values(this.#limits).flatMap(({ limiters }) => limiters.map((limiter) => limiter.close())),
    );
    await this.#redis.close();
    await Promise.all([this.#accessLog?.flush(), this.#auditLog?.flush()]);
  }
}

/** Settings of every listener's server; the proxy sets its client timeouts when it attaches. */
const serverOptions = { connectionsCheckingInterval: 1_000, maxHeaderSize: 16 * 1024 } as const;
