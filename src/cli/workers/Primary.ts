/**
 * `--workers N`: a primary process and N workers on `node:cluster`, sharing the listeners' ports
 * (the primary accepts connections and hands them to workers in turn). Each worker is a whole
 * proxy (a Runtime without an admin listener); the primary owns the configuration and the admin
 * listener:
 *
 * - it starts every worker from the configuration it sends, so a worker that crashed and was
 *   replaced runs what the others run, even after reloads and admin changes;
 * - its admin API shows every worker's statistics added up (see merge.ts), from snapshots the
 *   workers send every second and after each change;
 * - an admin change or a reload goes to every worker and is answered once all have applied it;
 * - SIGTERM drains every worker, then the primary exits.
 */

import cluster, { type Worker } from 'node:cluster';
import { randomBytes } from 'node:crypto';
import type { RequestListener } from 'node:http';
import type { Logger } from 'pino';
import type { AdminCluster } from '../../admin/createAdmin.js';
import type { ProxyMetricsSource } from '../../admin/metrics.js';
import type { ClusterStats } from '../../cluster/options.js';
import { parseDuration } from '../../core/duration.js';
import type { RateLimiterStats } from '../../limit/RateLimiter.js';
import { AdminListener, adminHandler, secretOf } from '../admin.js';
import type { ProxyConfig } from '../config/schema.js';
import { auditLog } from '../logs.js';
import { emptyReloadSummary, type ReloadSummary } from '../Runtime.js';
import { mergeClusterStats, mergeLimiterStats, mergeSessions, type WorkerSnapshot } from './merge.js';
import { type FromWorker, isMessage, type ToWorker, type WorkerCommand } from './messages.js';
import { WorkersCluster, type WorkersHost } from './WorkersCluster.js';

/** A worker the primary runs. */
interface WorkerState {
  readonly number: number;
  worker: Worker;
  snapshot: WorkerSnapshot | undefined;
  started: boolean;
}

/** A command sent to every worker, waiting for their answers. */
interface Pending {
  waiting: Set<number>;
  readonly errors: string[];
  readonly results: unknown[];
  readonly resolve: (results: unknown[]) => void;
  readonly reject: (error: Error) => void;
}

/** Replacements of crashed workers allowed within a minute before the primary gives up. */
const MAX_RESTARTS_PER_MINUTE = 10;

/** The primary process of `--workers N`. */
export class Primary implements WorkersHost {
  readonly #file: string;
  readonly #log: Logger;
  readonly #count: number;
  #config: ProxyConfig;
  readonly #workers = new Map<number, WorkerState>();
  readonly #pending = new Map<number, Pending>();
  #nextCommand = 1;
  #addresses: Record<string, string> = {};
  readonly #admin = new AdminListener();
  readonly #auditLog: ReturnType<typeof auditLog>;
  #stopping = false;
  readonly #restarts: number[] = [];
  /** Called when a worker cannot be kept running; the command then exits 1. */
  #onFatal: (error: Error) => void = () => {};

  private constructor(file: string, config: ProxyConfig, log: Logger, count: number) {
    this.#file = file;
    this.#config = config;
    this.#log = log;
    this.#count = count;
    this.#auditLog = auditLog(config, file);
  }

  /** Forks `count` workers, waits until every one serves, then opens the admin listener. */
  static async start(file: string, config: ProxyConfig, log: Logger, count: number): Promise<Primary> {
    const primary = new Primary(file, config, log, count);
    try {
      await primary.#start();
    } catch (error) {
      await primary.close(0);
      throw error;
    }
    return primary;
  }

  /** Called with the reason when workers keep crashing. */
  onFatal(callback: (error: Error) => void): void {
    this.#onFatal = callback;
  }

  /** Where each listener (and `admin`) serves. */
  addresses(): Record<string, string> {
    const out = { ...this.#addresses };
    const admin = this.#admin.url();
    if (admin !== undefined) out.admin = admin;
    return out;
  }

  async #start(): Promise<void> {
    const global = this.#config.global;
    // Every worker must sign affinity cookies and MCP session ids alike.
    const secret =
      secretOf(global.affinity_secret, global.affinity_secret_env, 'global.affinity_secret_env') ??
      process.env.MCGRAVITY_AFFINITY_SECRET;
    if (secret === undefined) {
      process.env.MCGRAVITY_AFFINITY_SECRET = randomBytes(24).toString('base64url');
      this.#log.warn(
        'no global.affinity_secret: affinity cookies and MCP session ids are valid in this process only; give every replica the same one',
      );
    } else process.env.MCGRAVITY_AFFINITY_SECRET = secret;
    for (const [name, settings] of Object.entries(this.#config.clusters)) {
      if (settings.rate_limits?.store === 'memory')
        this.#log.warn(
          { cluster: name, workers: this.#count },
          `clusters.${name}.rate_limits: each of the ${this.#count} workers counts on its own, so a client may get up to ${this.#count} times its limit; use store: { redis: URL } to share one count`,
        );
    }
    await Promise.all(Array.from({ length: this.#count }, (_, i) => this.#fork(i + 1)));
    this.#admin.handler = this.#adminListener();
    await this.#admin.open(global);
  }

  /** Starts worker `number` with the configuration in force, and resolves once it serves. */
  #fork(number: number): Promise<void> {
    const worker = cluster.fork({ MCGRAVITY_WORKER: String(number) });
    const state: WorkerState = { number, worker, snapshot: undefined, started: false };
    this.#workers.set(number, state);
    return new Promise<void>((resolve, reject) => {
      worker.on('message', (message: unknown) => {
        if (!isMessage<FromWorker>(message)) return;
        switch (message.type) {
          case 'waiting':
            this.#send(worker, { type: 'start', config: this.#config });
            return;
          case 'started':
            state.started = true;
            this.#addresses = message.addresses;
            this.#log.info({ worker: number, workerPid: worker.process.pid }, `worker ${number} serving`);
            resolve();
            return;
          case 'failed':
            reject(new Error(`worker ${number} could not start: ${message.error}`));
            return;
          case 'snapshot':
            state.snapshot = message.snapshot;
            return;
          case 'done':
            state.snapshot = message.snapshot;
            this.#answered(message.id, number, message.error, message.result);
            return;
        }
      });
      worker.once('exit', (code, signal) => {
        if (this.#workers.get(number) === state) this.#workers.delete(number);
        for (const [id] of this.#pending) this.#answered(id, number, undefined, undefined);
        if (!state.started) {
          reject(new Error(`worker ${number} exited with ${signal ?? code} before it served`));
          return;
        }
        if (this.#stopping) return;
        this.#log.error({ worker: number, code, signal }, `worker ${number} exited; starting another`);
        this.#replace(number);
      });
    });
  }

  #replace(number: number): void {
    const now = Date.now();
    this.#restarts.push(now);
    while ((this.#restarts[0] ?? now) < now - 60_000) this.#restarts.shift();
    if (this.#restarts.length > MAX_RESTARTS_PER_MINUTE) {
      this.#onFatal(new Error(`workers exited ${this.#restarts.length} times within a minute`));
      return;
    }
    this.#fork(number).catch((error: unknown) => {
      this.#log.error({ err: error }, `worker ${number} could not be replaced`);
      this.#onFatal(error as Error);
    });
  }

  #send(worker: Worker, message: ToWorker): void {
    if (worker.isConnected()) worker.send(message);
  }

  #answered(id: number, worker: number, error: string | undefined, result: unknown): void {
    const pending = this.#pending.get(id);
    if (pending === undefined || !pending.waiting.delete(worker)) return;
    if (error !== undefined) pending.errors.push(`worker ${worker}: ${error}`);
    else if (result !== undefined) pending.results.push(result);
    if (pending.waiting.size > 0) return;
    this.#pending.delete(id);
    if (pending.errors.length > 0) pending.reject(new Error(pending.errors.join('; ')));
    else pending.resolve(pending.results);
  }

  /** Sends `command` to every worker; resolves with their results once all have applied it. */
  #broadcast(command: WorkerCommand): Promise<unknown[]> {
    const id = this.#nextCommand++;
    return new Promise<unknown[]>((resolve, reject) => {
      const running = [...this.#workers.values()].filter((w) => w.started);
      this.#pending.set(id, {
        waiting: new Set(running.map((w) => w.number)),
        errors: [],
        results: [],
        resolve,
        reject,
      });
      for (const state of running) this.#send(state.worker, { type: 'command', id, command });
      if (running.length === 0) this.#answered(id, -1, undefined, undefined);
    });
  }

  /**
   * An admin change to a cluster: sent to every worker, and shown at once by patching the last
   * snapshots with `patch` (the workers' next snapshots replace it).
   */
  change(name: string, command: WorkerCommand, patch: (stats: ClusterStats) => ClusterStats): Promise<void> {
    for (const state of this.#workers.values()) {
      const stats = state.snapshot?.clusters[name];
      if (state.snapshot !== undefined && stats !== undefined)
        state.snapshot = {
          ...state.snapshot,
          clusters: { ...state.snapshot.clusters, [name]: patch(stats) },
        };
    }
    return this.#broadcast(command).then(
      () => undefined,
      (error: unknown) => {
        this.#log.error({ err: error, cluster: name, op: command.op }, 'an admin change failed in a worker');
      },
    );
  }

  /** Cluster `name` across every worker. */
  clusterStats(name: string): ClusterStats {
    const items: ClusterStats[] = [];
    for (const state of this.#workers.values()) {
      const stats = state.snapshot?.clusters[name];
      if (stats !== undefined) items.push(stats);
    }
    if (items.length === 0)
      return {
        name,
        endpoints: [],
        eligible: 0,
        panic: false,
        requests: 0,
        errors: 0,
        inflight: 0,
        latency: { p50: 0, p95: 0, p99: 0, rps: 0, count: 0 },
        retries: 0,
        requeues: 0,
        retryBudgetExhausted: 0,
      };
    return mergeClusterStats(items);
  }

  #snapshots(): WorkerSnapshot[] {
    const out: WorkerSnapshot[] = [];
    for (const state of this.#workers.values()) if (state.snapshot !== undefined) out.push(state.snapshot);
    return out;
  }

  #adminListener(): RequestListener {
    const primary = this;
    const clusters: Record<string, AdminCluster> = {};
    for (const name of Object.keys(this.#config.clusters)) clusters[name] = new WorkersCluster(name, this);
    const proxy: ProxyMetricsSource = {
      get inflight() {
        return primary.#snapshots().reduce((sum, s) => sum + s.proxy.inflight, 0);
      },
      get tunnels() {
        return primary.#snapshots().reduce((sum, s) => sum + s.proxy.tunnels, 0);
      },
      mcpSessions: () => mergeSessions(this.#snapshots().map((s) => s.proxy.mcpSessions)),
    };
    const limiters: Record<string, { stats(): RateLimiterStats }> = {};
    for (const [name, settings] of Object.entries(this.#config.clusters))
      for (const rule of settings.rate_limits?.rules ?? []) {
        if (rule.bypass) continue;
        const key = `${name}.${rule.client_type}`;
        limiters[key] = {
          stats: () =>
            mergeLimiterStats(
              this.#snapshots().flatMap((s) => (s.limiters[key] === undefined ? [] : [s.limiters[key]])),
            ),
        };
      }
    return adminHandler({
      file: this.#file,
      get config() {
        return primary.#config;
      },
      clusters,
      proxy,
      limiters,
      audit: this.#auditLog,
      log: this.#log,
      apply: (next) => this.reload(next, { fromFile: false }),
    });
  }

  /** Applies `next` in every worker (see Runtime.reload); rejects if any worker refused it. */
  async reload(next: ProxyConfig, options: { fromFile?: boolean } = {}): Promise<ReloadSummary> {
    const results = await this.#broadcast({ op: 'reload', config: next, fromFile: options.fromFile ?? true });
    this.#config = next;
    this.#admin.handler = this.#adminListener();
    const summary = results[0] as ReloadSummary | undefined;
    return summary ?? emptyReloadSummary();
  }

  /** Drains every worker (each within `timeoutMs`), then closes the admin listener and the audit log. */
  async close(timeoutMs = parseDuration(this.#config.global.shutdown_timeout)): Promise<void> {
    this.#stopping = true;
    const exits = [...this.#workers.values()].map(
      ({ worker }) =>
        new Promise<void>((resolve) => {
          if (worker.isDead()) return resolve();
          const deadline = setTimeout(() => worker.process.kill('SIGKILL'), timeoutMs + 5_000);
          worker.once('exit', () => {
            clearTimeout(deadline);
            resolve();
          });
          worker.process.kill('SIGTERM');
        }),
    );
    await Promise.all(exits);
    await this.#admin.close();
    await this.#auditLog?.close();
  }
}
