/**
 * `createAdmin()`: the operations endpoint of a proxy or of any process using clusters, as a
 * `node:http` request listener. Serve it on its own listener, on loopback by default:
 * `http.createServer(createAdmin({ clusters, token })).listen(9090, '127.0.0.1')` (the usual
 * metrics port).
 *
 * Read-only, open to anyone who can reach it:
 * - `GET /`: the status page (statusPage.ts), live, with drain and weight controls for token holders;
 * - `GET /health`: the process is alive;
 * - `GET /ready`: every cluster has an eligible endpoint (503 otherwise, naming the ones without);
 * - `GET /metrics`: Prometheus text;
 * - `GET /api/v1/health/clusters`: every endpoint's state;
 * - `GET /api/v1/metrics/performance`: requests, errors, latency percentiles, rates, pools.
 *
 * Changes, which need `Authorization: Bearer <token>` and are refused altogether when no token is
 * configured:
 * - `POST /api/v1/clusters/{name}/backends` with a backend as JSON: adds it;
 * - `PATCH /api/v1/clusters/{name}/backends/{id}` with `{ weight?, drain? }`;
 * - `POST /api/v1/clusters/{name}/backends/{id}/drain`: drains it (it stays, out of rotation);
 * - `DELETE /api/v1/clusters/{name}/backends/{id}`: drains and removes it;
 * - `POST /api/v1/clusters/{name}/{setting}` for each of the `settings` given (the command's
 *   traffic split, rate limits and circuit breaker), whose `GET` is open like the other reads.
 *
 * Each change that is made is reported to `onChange` (an audit log): who, what, before and after.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { Cluster } from '../cluster/Cluster.js';
import { type Duration, optionalDuration } from '../core/duration.js';
import type { BackendConfig } from '../core/endpoint.js';
import { isMcgravityError, McgravityError } from '../core/errors.js';
import { checkKnownOptions, describeValue, optionalNumber } from '../core/validate.js';
import type { RateLimiter } from '../limit/RateLimiter.js';
import type { TcpProxy } from '../tcp/createTcpProxy.js';
import { type ProxyMetricsSource, renderPrometheus } from './metrics.js';
import { serveStatusFile } from './statusPage.js';

/**
 * What the admin API uses of a cluster: a {@link Cluster}, or anything with these members (the
 * `mcgravity` command's primary process passes views of its workers' clusters).
 */
export type AdminCluster = Pick<
  Cluster,
  'name' | 'endpoints' | 'stats' | 'add' | 'remove' | 'drain' | 'undrain' | 'setWeight'
>;

/** Options of {@link createAdmin}. */
export interface AdminOptions {
  /** The clusters to report and manage, by name. @default the proxy's `clusters` */
  clusters?: Readonly<Record<string, AdminCluster>>;
  /**
   * A proxy whose in-flight requests, tunnels and MCP sessions to report; its clusters are reported
   * and managed too (those in `clusters` win a name they share).
   */
  proxy?: ProxyMetricsSource;
  /** Rate limiters to report, by name. */
  limiters?: Readonly<Record<string, Pick<RateLimiter, 'stats'>>>;
  /** TCP proxies to report, by listener name (their clusters go in `clusters`). */
  tcpProxies?: Readonly<Record<string, Pick<TcpProxy, 'stats'>>>;
  /** Bearer token that mutations need; without one they are refused. */
  token?: string;
  /**
   * More per-cluster settings to read and change, by path segment: `{ 'circuit-breaker': … }` serves
   * `GET` and `POST /api/v1/clusters/{name}/circuit-breaker`.
   */
  settings?: Readonly<Record<string, AdminSetting>>;
  /** Called after each change is made, with who made it and what it changed (an audit log). */
  onChange?: (change: AdminChange) => void;
  /**
   * Serve the status page at `/` (with `/status.css`, `/status.js` and `GET /api/v1/status`).
   * @default true
   */
  statusPage?: boolean;
  /** Largest request body accepted. @default 64 KiB */
  maxBodyBytes?: number;
  /** Time a client has to send a request body before it gets 408. @default 10_000 */
  bodyTimeoutMs?: Duration;
}

/** A per-cluster setting served by the admin API (see {@link AdminOptions.settings}). */
export interface AdminSetting {
  /** The cluster's current value, for `GET` and for the `before` and `after` of a change. */
  read(cluster: string): unknown;
  /**
   * Applies a new value, the body of a `POST`. Throw to refuse it: a McgravityError keeps its
   * status, any other error is a 400 with its message.
   */
  write(cluster: string, value: unknown): unknown;
}

/** One change made through the admin API. */
export interface AdminChange {
  /** Who: `token:` and the first 8 hex digits of the token's SHA-256 (never the token itself). */
  readonly actor: string;
  /** The caller's address. */
  readonly client: string;
  /** `POST /api/v1/clusters/api/backends`… */
  readonly action: string;
  readonly cluster: string;
  /** The backend, for changes to one. */
  readonly backend?: string;
  /** The state before and after: the backend (id, url, weight, draining) or the setting's value. */
  readonly before: unknown;
  readonly after: unknown;
}

function json(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(text);
}

/** Reads a JSON body of at most `limit` bytes within `timeoutMs` (408 when it stalls, 413 when too big). */
function readJson(req: IncomingMessage, limit: number, timeoutMs: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const fail = (error: unknown) => {
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.resume(); // whatever else arrives is read and dropped; the answer closes the connection
      reject(error);
    };
    const timer = setTimeout(
      () => fail(new McgravityError('EREQUESTTIMEOUT', `request body not received within ${timeoutMs} ms`)),
      timeoutMs,
    );
    timer.unref();
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) fail(new McgravityError('EBODYTOOLARGE', `body over ${limit} bytes`));
      else chunks.push(chunk);
    };
    const onEnd = () => {
      clearTimeout(timer);
      if (size === 0) return resolve({});
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch {
        reject(new McgravityError('EBADREQUEST', 'body is not valid JSON'));
      }
    };
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', fail);
  });
}

/** A path segment, percent-decoded; a malformed escape is the caller's mistake (400), not ours. */
function segment(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new McgravityError('EBADREQUEST', `malformed percent-encoding in the path: ${JSON.stringify(raw)}`);
  }
}

/** Creates the admin request listener. */
export function createAdmin(options: AdminOptions): RequestListener {
  if (options === null || typeof options !== 'object') throw new TypeError('createAdmin needs options');
  checkKnownOptions(
    options,
    [
      'clusters',
      'proxy',
      'limiters',
      'tcpProxies',
      'token',
      'settings',
      'onChange',
      'statusPage',
      'maxBodyBytes',
      'bodyTimeoutMs',
    ],
    'createAdmin',
  );
  const clusters = { ...(options.proxy?.clusters ?? {}), ...(options.clusters ?? {}) };
  if (options.clusters !== undefined && (options.clusters === null || typeof options.clusters !== 'object'))
    throw new TypeError('clusters must be an object of name → Cluster');
  if (options.clusters === undefined && options.proxy?.clusters === undefined)
    throw new TypeError('createAdmin needs clusters (name → Cluster), or a proxy that has them');
  for (const [name, cluster] of Object.entries(clusters)) {
    if (typeof cluster?.stats !== 'function') throw new TypeError(`clusters.${name} must be a Cluster`);
  }
  if (options.token !== undefined && (typeof options.token !== 'string' || options.token.length < 16)) {
    throw new TypeError(
      `token must be a string of at least 16 characters, got ${describeValue(options.token)}`,
    );
  }
  const token = options.token === undefined ? undefined : Buffer.from(options.token);
  const actor =
    options.token === undefined
      ? 'none'
      : `token:${createHash('sha256').update(options.token).digest('hex').slice(0, 8)}`;
  const settings = options.settings ?? {};
  for (const [name, setting] of Object.entries(settings)) {
    if (!/^[a-z0-9-]+$/.test(name) || name === 'backends')
      throw new TypeError(
        `settings.${name}: a setting's name must be a path segment of a-z, 0-9 and "-", not "backends"`,
      );
    if (typeof setting?.read !== 'function' || typeof setting.write !== 'function')
      throw new TypeError(`settings.${name} must have read() and write() methods`);
  }
  if (options.onChange !== undefined && typeof options.onChange !== 'function')
    throw new TypeError(`onChange must be a function, got ${describeValue(options.onChange)}`);
  const onChange = options.onChange;
  const changed = (
    req: IncomingMessage,
    cluster: string,
    before: unknown,
    after: unknown,
    backend?: string,
  ): void => {
    if (onChange === undefined) return;
    const path = (req.url ?? '/').split('?')[0];
    try {
      onChange({
        actor,
        client: req.socket.remoteAddress ?? '',
        action: `${req.method} ${path}`,
        cluster,
        ...(backend === undefined ? {} : { backend }),
        before,
        after,
      });
    } catch {
      // An audit hook that throws must not turn a change that was made into an error.
    }
  };
  const backendState = (cluster: AdminCluster, id: string) => {
    const stats = cluster.stats().endpoints.find((e) => e.id === id);
    return stats === undefined
      ? undefined
      : { id, url: stats.url, weight: stats.weight, draining: stats.draining };
  };
  const maxBodyBytes = optionalNumber(options.maxBodyBytes, 'maxBodyBytes', 64 * 1024, {
    min: 1,
    integer: true,
  });
  const bodyTimeoutMs = optionalDuration(options.bodyTimeoutMs, 'bodyTimeoutMs', 10_000);
  if (options.statusPage !== undefined && typeof options.statusPage !== 'boolean')
    throw new TypeError(`statusPage must be true or false, got ${describeValue(options.statusPage)}`);
  const statusPage = options.statusPage ?? true;
  const body = (req: IncomingMessage) => readJson(req, maxBodyBytes, bodyTimeoutMs);

  const authorise = (req: IncomingMessage): void => {
    if (token === undefined) {
      throw new McgravityError('EFORBIDDEN', 'changes are disabled: configure an admin token to allow them');
    }
    const header = req.headers.authorization ?? '';
    const given = Buffer.from(header.startsWith('Bearer ') ? header.slice(7) : '');
    if (given.length !== token.length || !timingSafeEqual(given, token)) {
      throw new McgravityError('EUNAUTHORIZED', 'a valid bearer token is required');
    }
  };

  const clusterNamed = (name: string): AdminCluster => {
    const cluster = Object.hasOwn(clusters, name) ? clusters[name] : undefined;
    if (cluster === undefined) throw new McgravityError('ENOTFOUND', `no cluster named "${name}"`);
    return cluster;
  };
  const requireEndpoint = (cluster: AdminCluster, id: string): void => {
    if (!cluster.endpoints.some((e) => e.id === id)) {
      throw new McgravityError('ENOTFOUND', `cluster ${cluster.name} has no backend "${id}"`);
    }
  };

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://admin.invalid');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const method = req.method ?? 'GET';
    if (method === 'GET' && path === '/health') return json(res, 200, { status: 'ok' });
    if (method === 'GET' && statusPage) {
      if (serveStatusFile(path, res)) return;
      if (path === '/api/v1/status') {
        return json(res, 200, {
          time: Date.now(),
          changesEnabled: token !== undefined,
          clusters: Object.fromEntries(
            Object.entries(clusters).map(([name, cluster]) => [name, cluster.stats()]),
          ),
          proxy: {
            inflight: options.proxy?.inflight ?? 0,
            tunnels: options.proxy?.tunnels ?? 0,
            mcpSessions: options.proxy?.mcpSessions?.() ?? {},
          },
        });
      }
    }
    if (method === 'GET' && path === '/ready') {
      const notReady = Object.entries(clusters)
        .filter(([, cluster]) => cluster.stats().eligible === 0)
        .map(([name]) => name);
      return json(res, notReady.length === 0 ? 200 : 503, {
        ready: notReady.length === 0,
        clustersWithoutEndpoints: notReady,
      });
    }
    if (method === 'GET' && path === '/metrics') {
      const body = renderPrometheus({
        clusters,
        ...(options.limiters === undefined ? {} : { limiters: options.limiters }),
        ...(options.proxy === undefined ? {} : { proxy: options.proxy }),
        ...(options.tcpProxies === undefined ? {} : { tcpProxies: options.tcpProxies }),
      });
      res.writeHead(200, {
        'content-type': 'text/plain; version=0.0.4; charset=utf-8',
        'cache-control': 'no-store',
      });
      return void res.end(body);
    }
    if (method === 'GET' && path === '/api/v1/health/clusters') {
      return json(res, 200, {
        clusters: Object.fromEntries(
          Object.entries(clusters).map(([name, cluster]) => {
            const stats = cluster.stats();
            return [
              name,
              {
                eligible: stats.eligible,
                panic: stats.panic,
                endpoints: stats.endpoints.map(
                  ({ id, url, eligible, healthy, ejected, draining, circuit, weight, effectiveWeight }) => ({
                    id,
                    url,
                    eligible,
                    healthy,
                    ejected,
                    draining,
                    circuit,
                    weight,
                    effectiveWeight,
                  }),
                ),
              },
            ];
          }),
        ),
      });
    }
    if (method === 'GET' && path === '/api/v1/metrics/performance') {
      return json(res, 200, {
        clusters: Object.fromEntries(
          Object.entries(clusters).map(([name, cluster]) => [name, cluster.stats()]),
        ),
        ...(options.proxy === undefined
          ? {}
          : {
              proxy: {
                inflight: options.proxy.inflight,
                ...(options.proxy.tunnels === undefined ? {} : { tunnels: options.proxy.tunnels }),
                ...(options.proxy.mcpSessions === undefined
                  ? {}
                  : { mcpSessions: options.proxy.mcpSessions() }),
              },
            }),
      });
    }
    const backends = /^\/api\/v1\/clusters\/([^/]+)\/backends(?:\/([^/]+)(\/drain)?)?$/.exec(path);
    if (backends !== null) {
      const id = backends[2];
      const drainPath = backends[3] !== undefined;
      // Reads are open; a change is authorised before anything is looked up, so that a caller
      // without the token learns nothing (not even whether a cluster exists).
      if (id === undefined && method === 'GET') {
        return json(res, 200, { backends: clusterNamed(segment(backends[1] as string)).stats().endpoints });
      }
      authorise(req);
      const clusterName = segment(backends[1] as string);
      const cluster = clusterNamed(clusterName);
      if (id === undefined && method === 'POST') {
        const config = (await body(req)) as BackendConfig;
        try {
          const endpoint = cluster.add(config);
          changed(req, clusterName, undefined, backendState(cluster, endpoint.id), endpoint.id);
          return json(res, 201, { id: endpoint.id, url: endpoint.url, weight: endpoint.weight });
        } catch (error) {
          throw new McgravityError('EBADREQUEST', (error as Error).message);
        }
      }
      const endpointId = id === undefined ? undefined : segment(id);
      if (endpointId !== undefined && drainPath && method === 'POST') {
        requireEndpoint(cluster, endpointId);
        const before = backendState(cluster, endpointId);
        void cluster.drain(endpointId);
        changed(req, clusterName, before, backendState(cluster, endpointId), endpointId);
        return json(res, 202, { id: endpointId, draining: true });
      }
      if (endpointId !== undefined && !drainPath && method === 'PATCH') {
        requireEndpoint(cluster, endpointId);
        const change = (await body(req)) as { weight?: unknown; drain?: unknown };
        if (change === null || typeof change !== 'object')
          throw new McgravityError('EBADREQUEST', 'body must be an object');
        const unknown = Object.keys(change).filter((key) => key !== 'weight' && key !== 'drain');
        if (unknown.length > 0)
          throw new McgravityError('EBADREQUEST', `unknown field "${unknown[0]}" (weight, drain)`);
        const before = backendState(cluster, endpointId);
        if (change.weight !== undefined) {
          try {
            cluster.setWeight(endpointId, change.weight as number);
          } catch (error) {
            throw new McgravityError('EBADREQUEST', (error as Error).message);
          }
        }
        if (change.drain === true) void cluster.drain(endpointId);
        else if (change.drain === false) cluster.undrain(endpointId);
        else if (change.drain !== undefined)
          throw new McgravityError('EBADREQUEST', 'drain must be true or false');
        const after = backendState(cluster, endpointId);
        changed(req, clusterName, before, after, endpointId);
        return json(res, 200, { id: endpointId, weight: after?.weight, draining: after?.draining });
      }
      if (endpointId !== undefined && !drainPath && method === 'DELETE') {
        requireEndpoint(cluster, endpointId);
        const before = backendState(cluster, endpointId);
        void cluster.remove(endpointId);
        changed(req, clusterName, before, undefined, endpointId);
        return json(res, 202, { id: endpointId, removing: true });
      }
      throw new McgravityError('EMETHOD', `${method} is not allowed on ${path}`);
    }
    const setting = /^\/api\/v1\/clusters\/([^/]+)\/([a-z0-9-]+)$/.exec(path);
    const handler = setting === null ? undefined : settings[setting[2] as string];
    if (setting !== null && handler !== undefined && Object.hasOwn(settings, setting[2] as string)) {
      if (method === 'GET') {
        const name = segment(setting[1] as string);
        clusterNamed(name);
        return json(res, 200, handler.read(name) ?? null);
      }
      if (method !== 'POST') throw new McgravityError('EMETHOD', `${method} is not allowed on ${path}`);
      authorise(req);
      const name = segment(setting[1] as string);
      clusterNamed(name);
      const value = await body(req);
      const before = handler.read(name);
      try {
        await handler.write(name, value);
      } catch (error) {
        if (isMcgravityError(error)) throw error;
        throw new McgravityError('EBADREQUEST', (error as Error).message);
      }
      const after = handler.read(name);
      changed(req, name, before, after);
      return json(res, 200, after ?? null);
    }
    throw new McgravityError('ENOTFOUND', `nothing at ${path}`);
  };

  return (req, res) => {
    route(req, res).catch((error: unknown) => {
      if (isMcgravityError(error)) {
        const headers: Record<string, string> =
          error.statusCode === 401 ? { 'www-authenticate': 'Bearer' } : {};
        if (error.statusCode === 408 || error.statusCode === 413) headers.connection = 'close';
        json(res, error.statusCode, { error: { code: error.code, message: error.message } }, headers);
      } else {
        json(res, 500, { error: { code: 'EINTERNAL', message: 'admin request failed' } });
      }
    });
  };
}
