/**
 * A cluster as the primary's admin API sees it when workers serve the traffic: its statistics are
 * every worker's added up, and a change (add, weight, drain, remove) goes to all of them. A change
 * shows at once, by patching the workers' last snapshots, until their next ones arrive.
 */
import type { AdminCluster } from '../../admin/createAdmin.js';
import type { ClusterStats } from '../../cluster/options.js';
import { type BackendConfig, type Endpoint, normalizeBackend } from '../../core/endpoint.js';
import { optionalNumber } from '../../core/validate.js';
import type { WorkerCommand } from './messages.js';

/** What a WorkersCluster needs of the primary. */
export interface WorkersHost {
  /** Sends `command` to every worker, and shows it at once by patching the snapshots with `patch`. */
  change(name: string, command: WorkerCommand, patch: (stats: ClusterStats) => ClusterStats): Promise<void>;
  /** Cluster `name` across every worker. */
  clusterStats(name: string): ClusterStats;
}

/** A cluster as the primary's admin API sees it: every worker's, changed in all of them. */
export class WorkersCluster implements AdminCluster {
  readonly name: string;
  readonly #primary: WorkersHost;

  constructor(name: string, primary: WorkersHost) {
    this.name = name;
    this.#primary = primary;
  }

  get endpoints(): readonly Endpoint[] {
    return this.stats().endpoints;
  }

  stats(): ClusterStats {
    return this.#primary.clusterStats(this.name);
  }

  add(backend: string | BackendConfig): Endpoint {
    const normalized = normalizeBackend(backend);
    if (this.endpoints.some((e) => e.id === normalized.id))
      throw new TypeError(`backend "${normalized.id}" is already in cluster ${this.name}`);
    const config: BackendConfig = typeof backend === 'string' ? { url: backend } : backend;
    this.#primary.change(this.name, { op: 'add', cluster: this.name, backend: config }, (stats) => ({
      ...stats,
      endpoints: [...stats.endpoints, placeholder(normalized)],
    }));
    return { id: normalized.id, url: normalized.url, weight: normalized.weight, inflight: 0 };
  }

  setWeight(id: string, weight: number): void {
    const checked = optionalNumber(weight, 'weight', 1, { min: 0 });
    this.#primary.change(this.name, { op: 'setWeight', cluster: this.name, id, weight: checked }, (stats) =>
      withEndpoint(stats, id, { weight: checked }),
    );
  }

  drain(id: string): Promise<void> {
    return this.#primary.change(this.name, { op: 'drain', cluster: this.name, id }, (stats) =>
      withEndpoint(stats, id, { draining: true, eligible: false }),
    );
  }

  undrain(id: string): void {
    void this.#primary.change(this.name, { op: 'undrain', cluster: this.name, id }, (stats) =>
      withEndpoint(stats, id, { draining: false }),
    );
  }

  remove(id: string): Promise<void> {
    return this.#primary.change(this.name, { op: 'remove', cluster: this.name, id }, (stats) =>
      withEndpoint(stats, id, { draining: true, eligible: false }),
    );
  }
}

/** An endpoint just added, until the workers' next snapshot reports it. */
function placeholder(backend: ReturnType<typeof normalizeBackend>): ClusterStats['endpoints'][number] {
  const latency = { p50: 0, p95: 0, p99: 0, rps: 0, count: 0 };
  return {
    id: backend.id,
    url: backend.url,
    weight: backend.weight,
    effectiveWeight: backend.weight,
    ...(backend.zone === undefined ? {} : { zone: backend.zone }),
    priority: backend.priority,
    eligible: true,
    healthy: true,
    ejected: false,
    draining: false,
    coolingDown: false,
    circuit: 'closed',
    inflight: 0,
    tunnels: 0,
    requests: 0,
    errors: 0,
    latencyEwma: 0,
    latency,
    pool: {
      connected: 0,
      free: 0,
      pending: 0,
      running: 0,
      connectionsOpened: 0,
      requests: 0,
      rejected: 0,
      resent: 0,
      reuseRatio: 0,
      utilisation: 0,
    },
  };
}

function withEndpoint(
  stats: ClusterStats,
  id: string,
  change: Partial<ClusterStats['endpoints'][number]>,
): ClusterStats {
  return { ...stats, endpoints: stats.endpoints.map((e) => (e.id === id ? { ...e, ...change } : e)) };
}
