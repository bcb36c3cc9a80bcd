/**
 * `createAdmin()`: the operations endpoint of a proxy or of any process using clusters, as a
 * `node:http` request listener. Serve it on its own listener, on loopback by default:
 * `http.createServer(createAdmin({ clusters, token })).listen(9090, '127.0.0.1')` (seed 000's
 * metrics port).
 *
 * Read-only, open to anyone who can reach it:
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
 * - `DELETE /api/v1/clusters/{name}/backends/{id}`: drains and removes it.
 */
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { Cluster } from '../cluster/Cluster.js';
import type { BackendConfig } from '../core/endpoint.js';
import { checkKnownOptions, describeValue } from '../core/validate.js';
import type { RateLimiter } from '../limit/RateLimiter.js';
import { type ProxyMetricsSource, renderPrometheus } from '../observe/prometheus.js';

/** Options of {@link createAdmin}. */
export interface AdminOptions {
  clusters: Readonly<Record<string, Cluster>>;
  /** A proxy whose in-flight count (and MCP sessions, with MCP affinity) to report. */
  proxy?: ProxyMetricsSource;
  /** Rate limiters to report, by name. */
  limiters?: Readonly<Record<string, RateLimiter>>;
  /** Bearer token that mutations need; without one they are refused. */
  token?: string;
  /** Largest request body accepted. @default 64 KiB */
  maxBodyBytes?: number;
}

class AdminError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
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

async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new AdminError(413, 'EBODYTOOLARGE', `body over ${limit} bytes`);
    chunks.push(chunk);
  }
  if (size === 0) return {};
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new AdminError(400, 'EBADREQUEST', 'body is not valid JSON');
  }
}

/** Creates the admin request listener. */
export function createAdmin(options: AdminOptions): RequestListener {
  if (options === null || typeof options !== 'object') throw new TypeError('createAdmin needs options');
  checkKnownOptions(options, ['clusters', 'proxy', 'limiters', 'token', 'maxBodyBytes'], 'createAdmin');
  if (options.clusters === null || typeof options.clusters !== 'object')
    throw new TypeError('clusters must be an object of name → Cluster');
  for (const [name, cluster] of Object.entries(options.clusters)) {
    if (typeof cluster?.stats !== 'function') throw new TypeError(`clusters.${name} must be a Cluster`);
  }
  if (options.token !== undefined && (typeof options.token !== 'string' || options.token.length < 16)) {
    throw new TypeError(
      `token must be a string of at least 16 characters, got ${describeValue(options.token)}`,
    );
  }
  const clusters = options.clusters;
  const token = options.token === undefined ? undefined : Buffer.from(options.token);
  const maxBodyBytes = options.maxBodyBytes ?? 64 * 1024;

  const authorise = (req: IncomingMessage): void => {
    if (token === undefined) {
      throw new AdminError(403, 'EFORBIDDEN', 'changes are disabled: configure an admin token to allow them');
    }
    const header = req.headers.authorization ?? '';
    const given = Buffer.from(header.startsWith('Bearer ') ? header.slice(7) : '');
    if (given.length !== token.length || !timingSafeEqual(given, token)) {
      throw new AdminError(401, 'EUNAUTHORIZED', 'a valid bearer token is required');
    }
  };

  const clusterNamed = (name: string): Cluster => {
    const cluster = Object.hasOwn(clusters, name) ? clusters[name] : undefined;
    if (cluster === undefined) throw new AdminError(404, 'ENOTFOUND', `no cluster named "${name}"`);
    return cluster;
  };
  const requireEndpoint = (cluster: Cluster, id: string): void => {
    if (!cluster.endpoints.some((e) => e.id === id)) {
      throw new AdminError(404, 'ENOTFOUND', `cluster ${cluster.name} has no backend "${id}"`);
    }
  };

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://admin.invalid');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const method = req.method ?? 'GET';
    if (method === 'GET' && path === '/health') return json(res, 200, { status: 'ok' });
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
                ...(options.proxy.mcpSessions === undefined
                  ? {}
                  : { mcpSessions: options.proxy.mcpSessions() }),
              },
            }),
      });
    }
    const backends = /^\/api\/v1\/clusters\/([^/]+)\/backends(?:\/([^/]+)(\/drain)?)?$/.exec(path);
    if (backends !== null) {
      const cluster = clusterNamed(decodeURIComponent(backends[1] as string));
      const id = backends[2] === undefined ? undefined : decodeURIComponent(backends[2]);
      const drainPath = backends[3] !== undefined;
      if (id === undefined && method === 'GET') {
        return json(res, 200, { backends: cluster.stats().endpoints });
      }
      authorise(req);
      if (id === undefined && method === 'POST') {
        const body = (await readJson(req, maxBodyBytes)) as BackendConfig;
        try {
          const endpoint = cluster.add(body);
          return json(res, 201, { id: endpoint.id, url: endpoint.url, weight: endpoint.weight });
        } catch (error) {
          throw new AdminError(400, 'EBADREQUEST', (error as Error).message);
        }
      }
      if (id !== undefined && drainPath && method === 'POST') {
        requireEndpoint(cluster, id);
        void cluster.drain(id);
        return json(res, 202, { id, draining: true });
      }
      if (id !== undefined && !drainPath && method === 'PATCH') {
        requireEndpoint(cluster, id);
        const body = (await readJson(req, maxBodyBytes)) as { weight?: unknown; drain?: unknown };
        if (body === null || typeof body !== 'object')
          throw new AdminError(400, 'EBADREQUEST', 'body must be an object');
        const unknown = Object.keys(body).filter((key) => key !== 'weight' && key !== 'drain');
        if (unknown.length > 0)
          throw new AdminError(400, 'EBADREQUEST', `unknown field "${unknown[0]}" (weight, drain)`);
        if (body.weight !== undefined) {
          try {
            cluster.setWeight(id, body.weight as number);
          } catch (error) {
            throw new AdminError(400, 'EBADREQUEST', (error as Error).message);
          }
        }
        if (body.drain === true) void cluster.drain(id);
        else if (body.drain === false) cluster.undrain(id);
        else if (body.drain !== undefined)
          throw new AdminError(400, 'EBADREQUEST', 'drain must be true or false');
        const stats = cluster.stats().endpoints.find((e) => e.id === id);
        return json(res, 200, { id, weight: stats?.weight, draining: stats?.draining });
      }
      if (id !== undefined && !drainPath && method === 'DELETE') {
        requireEndpoint(cluster, id);
        void cluster.remove(id);
        return json(res, 202, { id, removing: true });
      }
      throw new AdminError(405, 'EMETHOD', `${method} is not allowed on ${path}`);
    }
    throw new AdminError(404, 'ENOTFOUND', `nothing at ${path}`);
  };

  return (req, res) => {
    route(req, res).catch((error: unknown) => {
      if (error instanceof AdminError) {
        const headers: Record<string, string> = error.status === 401 ? { 'www-authenticate': 'Bearer' } : {};
        json(res, error.status, { error: { code: error.code, message: error.message } }, headers);
      } else {
        json(res, 500, { error: { code: 'EINTERNAL', message: 'admin request failed' } });
      }
    });
  };
}
