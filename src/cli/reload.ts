/**
 * What a reload changes, worked out before anything is touched. A cluster whose settings are the
 * same keeps its instance, and with it its connections, health state, ejections, latency windows
 * and sessions; only its backends are brought in line with the file (new ones added, missing ones
 * drained and removed, weights set). A cluster whose settings changed is built anew and swapped in;
 * the old one serves the requests it has until they finish. The file wins: a backend added, drained
 * or reweighted through the admin API is brought back to what the file says, as HAProxy does on a
 * reload without a state file.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Cluster } from '../cluster/Cluster.js';
import type { BackendConfig } from '../core/endpoint.js';
import { clusterOptions } from './build.js';
import type { ClusterConfig, ProxyConfig } from './config/schema.js';

/** What happens to one cluster of the new file. */
export type ClusterPlan =
  | { readonly kind: 'create' }
  | { readonly kind: 'rebuild'; readonly reason: string }
  | {
      readonly kind: 'keep';
      /** Backends to add. */
      readonly add: readonly BackendConfig[];
      /** Endpoint ids to drain and remove. */
      readonly remove: readonly string[];
      /** Endpoints that stay, with the weight the file gives them. */
      readonly keep: readonly { readonly id: string; readonly weight: number }[];
    };

/**
 * The cluster's settings that its instance is made from: everything but the backends, and the
 * sections the proxy (not the cluster) applies.
 */
function instanceSettings(cluster: ClusterConfig, config: ProxyConfig): unknown {
  const { backends, traffic_split, rate_limits, session_affinity, ...rest } = cluster;
  return cluster.load_balancing === 'geographic' ? { ...rest, zone: config.global.zone } : rest;
}

/** Library backends of a configured cluster, by endpoint id. */
function backendsById(name: string, cluster: ClusterConfig, config: ProxyConfig): Map<string, BackendConfig> {
  const byId = new Map<string, BackendConfig>();
  for (const backend of clusterOptions(name, cluster, config, undefined, '').backends ?? []) {
    const config = backend as BackendConfig;
    byId.set(config.id ?? new URL(config.url).host, config);
  }
  return byId;
}

/** Whether two backends differ in more than their weight. */
function differs(a: BackendConfig, b: BackendConfig): boolean {
  return !isDeepStrictEqual({ ...a, weight: 0 }, { ...b, weight: 0 });
}

/**
 * The plan for cluster `name` of `next`, given the configuration it runs under now (`previous`),
 * the running instance, and the ids it is removing already.
 */
export function planCluster(
  name: string,
  previous: ProxyConfig,
  next: ProxyConfig,
  running: Cluster | undefined,
  removing: ReadonlySet<string>,
): ClusterPlan {
  const before = previous.clusters[name];
  const after = next.clusters[name] as ClusterConfig;
  if (running === undefined || before === undefined) return { kind: 'create' };
  if (!isDeepStrictEqual(instanceSettings(before, previous), instanceSettings(after, next)))
    return { kind: 'rebuild', reason: 'its settings changed' };
  const was = backendsById(name, before, previous);
  const wanted = backendsById(name, after, next);
  const add: BackendConfig[] = [];
  const keep: { id: string; weight: number }[] = [];
  for (const [id, backend] of wanted) {
    const endpoint = running.endpoints.find((e) => e.id === id);
    if (endpoint === undefined) {
      add.push(backend);
      continue;
    }
    // An endpoint on its way out, or one that is not what the file now says: start afresh.
    if (removing.has(id)) return { kind: 'rebuild', reason: `backend ${id} is still being removed` };
    const old = was.get(id);
    if (endpoint.url !== backend.url || (old !== undefined && differs(old, backend)))
      return { kind: 'rebuild', reason: `backend ${id} changed` };
    keep.push({ id, weight: backend.weight ?? 1 });
  }
  const remove = running.endpoints
    .filter((endpoint) => !wanted.has(endpoint.id) && !removing.has(endpoint.id))
    .map((endpoint) => endpoint.id);
  return { kind: 'keep', add, remove, keep };
}

/** Whether a cluster's rate limiters can stay as they are (same rules, same client id header). */
export function sameRateLimits(name: string, previous: ProxyConfig, next: ProxyConfig): boolean {
  return (
    isDeepStrictEqual(previous.clusters[name]?.rate_limits, next.clusters[name]?.rate_limits) &&
    previous.global.client_id_header === next.global.client_id_header
  );
}
