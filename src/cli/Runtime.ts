/**
 * A running proxy process: the clusters of a configuration, a server and a proxy per listener, and
 * the admin listener. Built only from the library's public API: `createCluster`, `createProxy` with
 * `attach()` on servers made here (so that HTTPS works and a reload can hand a server to a new
 * proxy), and `createAdmin`.
 *
 * A reload (SIGHUP) prepares everything that can fail first: the new clusters, rate limiters,
 * certificates and servers on new addresses. Only when all of that worked does it switch: each
 * listener's server is handed to a new proxy (`attach`, then `detach` from the old one), kept
 * clusters get their backends brought in line with the file, and what was replaced is closed once
 * the requests it was serving have finished. A reload that fails changes nothing.
 */
import { randomBytes } from 'node:crypto';
import type { RequestListener, Server } from 'node:http';
import type https from 'node:https';
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import type { ProxyMetricsSource } from '../admin/metrics.js';
import { type Cluster, createCluster } from '../cluster/Cluster.js';
import { type Duration, parseDuration } from '../core/duration.js';
import type { RateLimiter } from '../limit/RateLimiter.js';
import { createProxy, type Proxy as ProxyInstance } from '../proxy/createProxy.js';
import { createTcpProxy, type TcpProxy } from '../tcp/createTcpProxy.js';
import { AdminListener, adminHandler, secretOf } from './admin.js';
import { clusterOptions, proxyOptions } from './build.js';
import type { ListenerConfig, ProxyConfig } from './config/schema.js';
import { accessLog, auditLog } from './logs.js';
import { type ClusterRateLimits, clusterRateLimits, RedisConnections } from './rateLimits.js';
import { type ClusterPlan, planCluster, sameRateLimits } from './reload.js';
import { listenerKey, listenOn, schemeOf, serverFor, tlsOf, urlOf } from './servers.js';
import { mergeSessions, type WorkerSnapshot } from './workers/merge.js';
import type { WorkerCommand } from './workers/messages.js';

/** Longest wait at start (or reload) for a discovery source's first answer before serving. */
const DISCOVERY_WAIT_MS = 5_000;

/** What serves a listener: an HTTP proxy, or a TCP proxy for a `tcp` listener. */
type ListenerProxy = ProxyInstance | TcpProxy;

function isHttpProxy(proxy: ListenerProxy): proxy is ProxyInstance {
  return typeof (proxy as ProxyInstance).mcpSessions === 'function';
}

/** One listener: its server, and the proxy serving on it now. */
interface RunningListener {
  readonly config: ListenerConfig;
  readonly server: Server;
  readonly proxy: ListenerProxy;
}

/** How a Runtime runs. */
export interface RuntimeOptions {
  /** The worker's number when it is one of several processes (see workers/Primary.ts). */
  worker?: number;
}

/** What a reload did, for the log. */
export interface ReloadSummary {
  readonly clusters: {
    readonly kept: string[];
    readonly created: string[];
    readonly rebuilt: string[];
    readonly removed: string[];
  };
  readonly backends: { readonly added: string[]; readonly removed: string[] };
  readonly listeners: { readonly kept: string[]; readonly opened: string[]; readonly closed: string[] };
  readonly warnings: string[];
}

/** A summary of a reload that changed nothing yet. */
export function emptyReloadSummary(): ReloadSummary {
  return {
    clusters: { kept: [], created: [], rebuilt: [], removed: [] },
    backends: { added: [], removed: [] },
    listeners: { kept: [], opened: [], closed: [] },
    warnings: [],
  };
}

/** The running process. */
export class Runtime {
  readonly #file: string;
  readonly #log: Logger;
  #config: ProxyConfig;
  #clusters: Record<string, Cluster> = {};
  #limits: Record<string, ClusterRateLimits> = {};
  /** Listeners by name. */
  #listeners = new Map<string, RunningListener>();
  readonly #admin = new AdminListener();
  #affinitySecret: string;
  #accessLog: ReturnType<typeof accessLog>;
  readonly #auditLog: ReturnType<typeof auditLog>;
  readonly #redis = new RedisConnections();
  /** Endpoint ids being drained and removed from kept clusters, by cluster name. */
  readonly #removing = new Map<string, Set<string>>();
  /** What a reload replaced, closing once its requests have finished; close() waits for it. */
  readonly #retiring = new Set<Promise<void>>();
  /** Proxies a reload replaced that are still draining; close() cuts them short with the rest. */
  readonly #draining = new Set<ListenerProxy>();
  /** Resolves when close() has closed every proxy. */
  readonly #stopped: Promise<void>;
  #stop: () => void = () => {};
  /** Reloads run one at a time. */
  #reloading: Promise<unknown> = Promise.resolve();

  /** Set in a worker process: its number, for its own log files; it then has no admin listener. */
  readonly #worker: number | undefined;

  private constructor(file: string, config: ProxyConfig, log: Logger, options: RuntimeOptions) {
    this.#file = file;
    this.#config = config;
    this.#log = log;
    this.#worker = options.worker;
    this.#stopped = new Promise((resolve) => {
      this.#stop = resolve;
    });
    this.#affinitySecret = this.#secretFor(config);
    this.#accessLog = accessLog(config, file, options.worker);
    // In workers the primary process serves the admin API and writes the audit log.
    this.#auditLog = options.worker === undefined ? auditLog(config, file) : undefined;
  }

  /** Starts everything a configuration describes; on failure, closes what it had started. */
  static async start(
    file: string,
    config: ProxyConfig,
    log: Logger,
    options: RuntimeOptions = {},
  ): Promise<Runtime> {
    const runtime = new Runtime(file, config, log, options);
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
      out[name] = urlOf(listener.server, schemeOf(listener.config));
    const admin = this.#admin.url();
    if (admin !== undefined) out.admin = admin;
    return out;
  }

  async #start(): Promise<void> {
    const config = this.#config;
    for (const [name, cluster] of Object.entries(config.clusters)) {
      this.#clusters[name] = this.#createCluster(name, config);
      if (cluster.rate_limits !== undefined)
        this.#limits[name] = await clusterRateLimits(name, cluster.rate_limits, config, this.#redis);
    }
    await this.#discovered(this.#clusters);
    for (const listener of config.listeners) {
      const server = serverFor(listener, this.#file);
      const proxy = this.#proxyFor(listener);
      proxy.attach(server);
      this.#listeners.set(listener.name, { config: listener, server, proxy });
      await listenOn(server, listener.address);
    }
    if (this.#worker !== undefined) return;
    this.#admin.handler = this.#adminListener();
    await this.#admin.open(config.global);
  }

  /**
   * Waits (up to {@link DISCOVERY_WAIT_MS}) for clusters with a discovery source to have their first
   * answer, so that a listener does not open onto an empty cluster; one still waiting then is logged
   * and keeps looking while it serves.
   */
  async #discovered(clusters: Readonly<Record<string, Cluster>>): Promise<void> {
    const pending = new Set(Object.keys(clusters));
    const found = Promise.all(
      Object.entries(clusters).map(([name, cluster]) => cluster.ready().then(() => pending.delete(name))),
    );
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([found, new Promise((resolve) => (timer = setTimeout(resolve, DISCOVERY_WAIT_MS)))]);
    clearTimeout(timer);
    for (const name of pending)
      this.#log.warn({ cluster: name }, 'discovery has found no backends yet; serving while it looks');
  }

  #createCluster(name: string, config: ProxyConfig): Cluster {
    const settings = config.clusters[name];
    if (settings === undefined) throw new Error(`no cluster named ${name}`);
    return createCluster(clusterOptions(name, settings, config, this.#log, this.#file));
  }

  /** The affinity secret of `config`; without one, the process keeps the random one it made. */
  #secretFor(config: ProxyConfig): string {
    const configured =
      secretOf(
        config.global.affinity_secret,
        config.global.affinity_secret_env,
        'global.affinity_secret_env',
      ) ?? process.env.MCGRAVITY_AFFINITY_SECRET;
    if (configured !== undefined) return configured;
    // One secret for the life of the process, so that affinity cookies and MCP sessions outlive
    // reloads; replicas need a shared one.
    if (this.#affinitySecret === undefined)
      this.#log.warn(
        'no global.affinity_secret: affinity cookies and MCP session ids are valid in this process only; give every replica the same one',
      );
    return this.#affinitySecret ?? randomBytes(24).toString('base64url');
  }

  #proxyFor(listener: ListenerConfig): ListenerProxy {
    if (listener.protocol === 'tcp') {
      const tcp = listener.tcp;
      return createTcpProxy({
        cluster: this.#clusters[listener.cluster as string] as Cluster,
        connectTimeoutMs: tcp.connect_timeout as Duration,
        idleTimeoutMs: tcp.idle_timeout as Duration,
        maxConnections: tcp.max_connections,
        proxyProtocol: tcp.proxy_protocol,
      });
    }
    const accessLog = this.#accessLog;
    return createProxy(
      proxyOptions(listener, this.#config, this.#clusters, this.#limits, {
        logger: this.#log.child({ listener: listener.name }),
        affinitySecret: this.#affinitySecret,
        ...(accessLog === undefined ? {} : { accessLog }),
      }),
    );
  }

  /**
   * Applies a new configuration (already validated): see the file's header. Resolves with what
   * changed; rejects, having changed nothing, when something of the new configuration cannot be
   * made (a cluster's options, a certificate, a port, Redis).
   */
  reload(next: ProxyConfig, options: { fromFile?: boolean } = {}): Promise<ReloadSummary> {
    const fromFile = options.fromFile ?? true;
    const run = this.#reloading.then(() => this.#reload(next, fromFile));
    this.#reloading = run.catch(() => undefined);
    return run;
  }

  async #reload(next: ProxyConfig, fromFile: boolean): Promise<ReloadSummary> {
    const previous = this.#config;
    const summary = emptyReloadSummary();
    // 1. Everything that can fail, made aside.
    const plans = new Map<string, ClusterPlan>();
    const made: Record<string, Cluster> = {};
    const limits: Record<string, ClusterRateLimits> = {};
    const madeLimits: ClusterRateLimits[] = [];
    const opened = new Map<string, Server>();
    const certificates = new Map<string, { cert: Buffer; key: Buffer }>();
    const takeover = this.#takeovers(next.listeners);
    try {
      for (const [name, cluster] of Object.entries(next.clusters)) {
        const plan = planCluster(
          name,
          previous,
          next,
          this.#clusters[name],
          this.#removing.get(name) ?? new Set(),
        );
        plans.set(name, plan);
        if (plan.kind !== 'keep') made[name] = this.#createCluster(name, next);
        if (cluster.rate_limits === undefined) continue;
        const running = this.#limits[name];
        if (running !== undefined && sameRateLimits(name, previous, next)) limits[name] = running;
        else {
          limits[name] = await clusterRateLimits(name, cluster.rate_limits, next, this.#redis);
          madeLimits.push(limits[name]);
        }
      }
      await this.#discovered(made);
      for (const listener of next.listeners) {
        const tls = tlsOf(listener, this.#file);
        if (tls !== undefined) certificates.set(listener.name, tls);
        if (takeover.has(listener.name)) continue;
        const server = serverFor(listener, this.#file);
        opened.set(listener.name, server);
        await listenOn(server, listener.address);
      }
    } catch (error) {
      await Promise.all([
        ...Object.values(made).map((cluster) => cluster.close({ timeoutMs: 0 })),
        ...madeLimits.flatMap(({ limiters }) => limiters.map((limiter) => limiter.close())),
        ...[...opened.values()].map(
          (server) => new Promise<void>((resolve) => server.close(() => resolve())),
        ),
      ]);
      throw error;
    }

    // 2. The switch: nothing below can fail for reasons of the configuration.
    const clusters: Record<string, Cluster> = {};
    const replaced: Cluster[] = [];
    for (const [name, plan] of plans) {
      const running = this.#clusters[name];
      if (plan.kind !== 'keep') {
        clusters[name] = made[name] as Cluster;
        if (plan.kind === 'rebuild') {
          summary.clusters.rebuilt.push(`${name} (${plan.reason})`);
          replaced.push(running as Cluster);
          this.#removing.delete(name);
        } else summary.clusters.created.push(name);
        continue;
      }
      const cluster = running as Cluster;
      clusters[name] = cluster;
      summary.clusters.kept.push(name);
      // An admin change leaves the backends as the admin API made them; a file brings them in line.
      if (!fromFile) continue;
      for (const backend of plan.add) summary.backends.added.push(`${name}/${cluster.add(backend).id}`);
      for (const { id, weight } of plan.keep) {
        cluster.setWeight(id, weight);
        cluster.undrain(id);
      }
      for (const id of plan.remove) {
        summary.backends.removed.push(`${name}/${id}`);
        this.#removeBackend(name, cluster, id, next);
      }
    }
    for (const [name, cluster] of Object.entries(this.#clusters)) {
      if (Object.hasOwn(next.clusters, name)) continue;
      summary.clusters.removed.push(name);
      replaced.push(cluster);
      this.#removing.delete(name);
    }
    const retiredLimits = Object.entries(this.#limits)
      .filter(([name, set]) => limits[name] !== set)
      .map(([, set]) => set);
    const oldAccessLog = this.#accessLog;
    const accessLogChanged = !isDeepStrictEqual(previous.access_log, next.access_log);
    if (accessLogChanged) this.#accessLog = accessLog(next, this.#file, this.#worker);
    this.#config = next;
    this.#clusters = clusters;
    this.#limits = limits;
    this.#affinitySecret = this.#secretFor(next);
    if (process.env.MCGRAVITY_LOG_LEVEL === undefined) this.#log.level = next.global.log_level;

    const listeners = new Map<string, RunningListener>();
    const retiring: ListenerProxy[] = [];
    const handedOver = new Set<RunningListener>();
    for (const listener of next.listeners) {
      const proxy = this.#proxyFor(listener);
      const old = takeover.get(listener.name);
      const server = old?.server ?? (opened.get(listener.name) as Server);
      const tls = certificates.get(listener.name);
      if (old !== undefined && tls !== undefined) (server as https.Server).setSecureContext(tls);
      proxy.attach(server);
      if (old !== undefined) {
        old.proxy.detach(server);
        retiring.push(old.proxy);
        handedOver.add(old);
        summary.listeners.kept.push(listener.name);
      } else summary.listeners.opened.push(listener.name);
      listeners.set(listener.name, { config: listener, server, proxy });
    }
    for (const old of this.#listeners.values()) {
      if (handedOver.has(old)) continue;
      // Its server is still attached: closing the proxy stops accepting and drains it.
      summary.listeners.closed.push(old.config.name);
      retiring.push(old.proxy);
    }
    this.#listeners = listeners;

    const admin = next.global;
    if (
      admin.metrics_address !== previous.global.metrics_address ||
      admin.metrics_port !== previous.global.metrics_port
    )
      summary.warnings.push('global.metrics_address and metrics_port take effect at the next start');
    if (!isDeepStrictEqual(next.audit_log, previous.audit_log))
      summary.warnings.push('audit_log takes effect at the next start');
    if (admin.workers !== previous.global.workers)
      summary.warnings.push('global.workers takes effect at the next start');
    if (this.#worker === undefined) this.#admin.handler = this.#adminListener();

    // 3. What was replaced closes once its requests have finished.
    const timeoutMs = parseDuration(next.global.shutdown_timeout);
    for (const proxy of retiring) this.#draining.add(proxy);
    this.#retire(async () => {
      const drained = Promise.all(retiring.map((proxy) => proxy.close({ timeoutMs })));
      await Promise.race([drained, this.#stopped]);
      for (const proxy of retiring) this.#draining.delete(proxy);
      await Promise.all([
        ...replaced.map((cluster) => cluster.close({ timeoutMs: 0 })),
        ...retiredLimits.flatMap(({ limiters }) => limiters.map((limiter) => limiter.close())),
        accessLogChanged ? oldAccessLog?.close() : undefined,
      ]);
    });
    return summary;
  }

  /**
   * Which running listener's server each new listener takes over: one with the same address and
   * scheme, under the same name if there is one. Each server goes to one listener at most.
   */
  #takeovers(listeners: readonly ListenerConfig[]): Map<string, RunningListener> {
    const takeover = new Map<string, RunningListener>();
    const free = new Set(this.#listeners.values());
    const claim = (listener: ListenerConfig, candidate: RunningListener | undefined) => {
      if (candidate === undefined || !free.has(candidate)) return;
      if (listenerKey(candidate.config) !== listenerKey(listener)) return;
      takeover.set(listener.name, candidate);
      free.delete(candidate);
    };
    for (const listener of listeners) claim(listener, this.#listeners.get(listener.name));
    for (const listener of listeners) {
      if (takeover.has(listener.name)) continue;
      for (const candidate of free) {
        claim(listener, candidate);
        if (takeover.has(listener.name)) break;
      }
    }
    return takeover;
  }

  /** Drains `id` out of a kept cluster, in the background. */
  #removeBackend(name: string, cluster: Cluster, id: string, config: ProxyConfig): void {
    const done = this.#removing.get(name) ?? new Set<string>();
    this.#removing.set(name, done);
    done.add(id);
    this.#retire(async () => {
      try {
        await cluster.remove(id, { timeoutMs: parseDuration(config.global.shutdown_timeout) });
      } catch {
        // Removed already (the cluster was rebuilt or closed meanwhile).
      } finally {
        done.delete(id);
      }
    });
  }

  #retire(work: () => Promise<void>): void {
    const running = work().catch((error: unknown) =>
      this.#log.error({ err: error }, 'closing what a reload replaced failed'),
    );
    this.#retiring.add(running);
    void running.then(() => this.#retiring.delete(running));
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
        for (const { proxy } of listeners.values()) if (isHttpProxy(proxy)) sum += proxy.tunnels;
        return sum;
      },
      mcpSessions: () =>
        mergeSessions(
          [...this.#listeners.values()].flatMap(({ proxy }) =>
            isHttpProxy(proxy) ? [proxy.mcpSessions()] : [],
          ),
        ),
    };
  }

  /** The TCP listeners' proxies by listener name, for metrics. */
  #tcpProxies(): Record<string, TcpProxy> {
    const out: Record<string, TcpProxy> = {};
    for (const [name, { proxy }] of this.#listeners) if (!isHttpProxy(proxy)) out[name] = proxy;
    return out;
  }

  /** Rate limiters by `cluster.client_type`, for metrics. */
  #limiters(): Record<string, RateLimiter> {
    const out: Record<string, RateLimiter> = {};
    for (const [cluster, { limiters }] of Object.entries(this.#limits))
      for (const limiter of limiters) out[`${cluster}.${limiter.rules[0]?.name}`] = limiter;
    return out;
  }

  /** This process's statistics, for the primary of a set of workers. */
  snapshot(): WorkerSnapshot {
    const source = this.#metricsSource();
    return {
      clusters: Object.fromEntries(Object.entries(this.#clusters).map(([name, c]) => [name, c.stats()])),
      limiters: Object.fromEntries(Object.entries(this.#limiters()).map(([name, l]) => [name, l.stats()])),
      proxy: {
        inflight: source.inflight,
        tunnels: source.tunnels ?? 0,
        mcpSessions: source.mcpSessions?.() ?? {},
      },
    };
  }

  /** An admin change the primary sends to every worker. */
  async apply(command: WorkerCommand): Promise<ReloadSummary | undefined> {
    if (command.op === 'reload') return this.reload(command.config, { fromFile: command.fromFile });
    const cluster = this.#clusters[command.cluster];
    if (cluster === undefined) throw new Error(`no cluster named "${command.cluster}"`);
    switch (command.op) {
      case 'add':
        cluster.add(command.backend);
        break;
      case 'setWeight':
        cluster.setWeight(command.id, command.weight);
        break;
      case 'drain':
        void cluster.drain(command.id);
        break;
      case 'undrain':
        cluster.undrain(command.id);
        break;
      case 'remove':
        void cluster.remove(command.id);
        break;
    }
    return undefined;
  }

  #adminListener(): RequestListener {
    const runtime = this;
    return adminHandler({
      file: this.#file,
      get config() {
        return runtime.#config;
      },
      clusters: this.#clusters,
      proxy: this.#metricsSource(),
      limiters: this.#limiters(),
      tcpProxies: this.#tcpProxies(),
      audit: this.#auditLog,
      log: this.#log,
      apply: (next) => this.reload(next, { fromFile: false }),
    });
  }

  /**
   * Stops accepting, lets requests in flight finish for up to `timeoutMs`, then closes every
   * cluster and log.
   */
  async close(timeoutMs = parseDuration(this.#config.global.shutdown_timeout)): Promise<void> {
    const proxies = [...[...this.#listeners.values()].map(({ proxy }) => proxy), ...this.#draining];
    await Promise.all(proxies.map((proxy) => proxy.close({ timeoutMs })));
    this.#listeners.clear();
    this.#stop();
    await Promise.all(this.#retiring);
    await this.#admin.close();
    await Promise.all(Object.values(this.#clusters).map((cluster) => cluster.close({ timeoutMs: 0 })));
    await Promise.all(
      Object.values(this.#limits).flatMap(({ limiters }) => limiters.map((limiter) => limiter.close())),
    );
    await this.#redis.close();
    await Promise.all([this.#accessLog?.close(), this.#auditLog?.close()]);
  }
}
