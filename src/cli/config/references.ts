/**
 * What a schema cannot say about a configuration: names that must refer to something (a listener's
 * cluster, a split's groups), names that must be unique, files that must be readable, fields that
 * need each other. Each problem carries its key path, so that it is reported at its line.
 */
import { accessSync, constants } from 'node:fs';
import { backendUrl, fileFrom, listenAddress } from './addresses.js';
import type { ProxyConfig } from './schema.js';

/** A problem at a key path. */
export interface ReferenceProblem {
  readonly path: readonly (string | number)[];
  readonly message: string;
}

/** Every cross-reference problem of a configuration that passed the schema. */
export function checkReferences(config: ProxyConfig, file: string): ReferenceProblem[] {
  const problems: ReferenceProblem[] = [];
  const problem = (path: readonly (string | number)[], message: string) => problems.push({ path, message });
  const clusterNames = Object.keys(config.clusters);
  const knownCluster = (name: string, path: readonly (string | number)[]) => {
    if (!Object.hasOwn(config.clusters, name))
      problem(path, `no cluster named "${name}" (clusters: ${clusterNames.join(', ') || 'none'})`);
  };

  const { global } = config;
  if (global.admin_token !== undefined && global.admin_token_env !== undefined)
    problem(['global', 'admin_token_env'], 'give admin_token or admin_token_env, not both');
  if (global.affinity_secret !== undefined && global.affinity_secret_env !== undefined)
    problem(['global', 'affinity_secret_env'], 'give affinity_secret or affinity_secret_env, not both');

  for (const [name, cluster] of Object.entries(config.clusters)) {
    const at = ['clusters', name];
    if (cluster.backends.length === 0 && !cluster.allow_empty && cluster.discovery === undefined)
      problem(
        [...at, 'backends'],
        'a cluster needs a backend, a discovery source, or allow_empty: true (to add them through the admin API)',
      );
    const dns =
      cluster.discovery !== undefined && 'dns' in cluster.discovery ? cluster.discovery.dns : undefined;
    if (dns !== undefined && dns.type === 'SRV' && dns.port !== undefined)
      problem([...at, 'discovery', 'dns', 'port'], 'SRV records carry their own ports: leave port out');
    const ids = new Map<string, number>();
    cluster.backends.forEach((backend, i) => {
      let id = backend.id;
      try {
        id ??= new URL(backendUrl(backend.address, cluster.protocol === 'tcp')).host;
      } catch (error) {
        problem([...at, 'backends', i, 'address'], (error as Error).message);
      }
      if (id === undefined) return;
      const first = ids.get(id);
      if (first !== undefined)
        problem(
          [...at, 'backends', i],
          `backend "${id}" is listed twice (also backends[${first}]); give each an id`,
        );
      else ids.set(id, i);
    });
    if (cluster.load_balancing === 'geographic' && global.zone === undefined)
      problem(
        [...at, 'load_balancing'],
        'geographic balancing needs global.zone, the zone this proxy runs in',
      );
    const split = cluster.traffic_split;
    if (split !== undefined) {
      split.splits.forEach((s, i) => {
        knownCluster(s.backend_group, [...at, 'traffic_split', 'splits', i, 'backend_group']);
      });
      if (split.fallback_group !== undefined)
        knownCluster(split.fallback_group, [...at, 'traffic_split', 'fallback_group']);
      const total = split.splits.reduce((sum, s) => sum + s.percentage, 0);
      if (total > 100)
        problem([...at, 'traffic_split', 'splits'], `percentages add up to ${total}, more than 100`);
    }
  }

  const listenerNames = new Map<string, number>();
  const addresses = new Map<string, number>();
  config.listeners.forEach((listener, i) => {
    const at = ['listeners', i];
    const sameName = listenerNames.get(listener.name);
    if (sameName !== undefined)
      problem([...at, 'name'], `listener "${listener.name}" is defined twice (also listeners[${sameName}])`);
    else listenerNames.set(listener.name, i);
    try {
      const { host, port } = listenAddress(listener.address);
      const key = `${host}:${port}`;
      const sameAddress = addresses.get(key);
      if (port !== 0 && sameAddress !== undefined)
        problem([...at, 'address'], `${listener.address} is taken by listeners[${sameAddress}] too`);
      else addresses.set(key, i);
    } catch (error) {
      problem([...at, 'address'], (error as Error).message);
    }
    if ((listener.cluster === undefined) === (listener.routes === undefined))
      problem(at, 'a listener needs either cluster or routes');
    if (listener.cluster !== undefined) knownCluster(listener.cluster, [...at, 'cluster']);
    const served = listener.cluster === undefined ? undefined : config.clusters[listener.cluster];
    if (listener.protocol === 'tcp') {
      if (listener.routes !== undefined)
        problem([...at, 'routes'], 'a tcp listener relays connections: give it a cluster, not routes');
      if (served !== undefined && served.protocol !== 'tcp')
        problem(
          [...at, 'cluster'],
          `a tcp listener needs a cluster with protocol: tcp ("${listener.cluster}" speaks ${served.protocol})`,
        );
      if (listener.ssl?.enabled === true)
        problem(
          [...at, 'ssl'],
          'a tcp listener relays bytes as they are: TLS is not terminated here (let the backends speak it)',
        );
    } else {
      const targets =
        listener.cluster !== undefined ? [listener.cluster] : (listener.routes ?? []).map((r) => r.cluster);
      for (const name of targets) {
        if (config.clusters[name]?.protocol === 'tcp')
          problem(at, `cluster "${name}" is a tcp cluster: only a tcp listener can send to it`);
      }
    }
    listener.routes?.forEach((route, r) => {
      knownCluster(route.cluster, [...at, 'routes', r, 'cluster']);
    });
    const tls = listener.protocol === 'https' || listener.ssl?.enabled === true;
    if (listener.protocol === 'https' && (listener.ssl === undefined || !listener.ssl.enabled))
      problem([...at, 'protocol'], 'https needs ssl with cert_file and key_file');
    if (tls && listener.ssl !== undefined) {
      for (const key of ['cert_file', 'key_file'] as const) {
        const path = fileFrom(file, listener.ssl[key]);
        try {
          accessSync(path, constants.R_OK);
        } catch {
          problem([...at, 'ssl', key], `cannot read ${path}`);
        }
      }
    }
  });
  return problems;
}
