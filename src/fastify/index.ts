/**
 * `mcgravity/fastify`: a Fastify plugin that mounts a proxy under the prefix it is registered with,
 * the way `@fastify/http-proxy` does: every method and path below the prefix is proxied (bodies
 * streamed untouched: the plugin's own scope parses nothing), the prefix is replaced by
 * `rewritePrefix` on the way upstream, and WebSocket upgrades below the prefix are proxied too.
 *
 * ```ts
 * await app.register(mcgravity, { prefix: '/api', upstream: { backends: ['http://10.0.0.1:3000'] } });
 * ```
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { Cluster, ClusterOptions } from '../cluster/Cluster.js';
import { describeValue } from '../core/validate.js';
import { createProxy } from '../proxy/createProxy.js';
import type { Proxy as McgravityProxy, ProxyOptions } from '../proxy/options.js';

/** Options of the Fastify plugin. */
export interface McgravityFastifyOptions {
  /** The upstream: a Cluster, cluster options, or a proxy you made with `createProxy()`. */
  upstream: Cluster | ClusterOptions | McgravityProxy;
  /** What replaces the registration prefix in the path sent upstream. @default '' (the prefix is removed) */
  rewritePrefix?: string;
  /** Proxy WebSocket upgrades below the prefix. @default true */
  websocket?: boolean;
  /** Options for the proxy the plugin creates (not with a `Proxy` as `upstream`). */
  proxy?: Omit<ProxyOptions, 'cluster' | 'routes'>;
}

function isProxy(value: unknown): value is McgravityProxy {
  return (
    value !== null && typeof value === 'object' && typeof (value as McgravityProxy).handler === 'function'
  );
}

/** The Fastify plugin; see the module comment. Register it without fastify-plugin's scope skipping. */
export const mcgravity: FastifyPluginAsync<McgravityFastifyOptions> = async (
  fastify: FastifyInstance,
  options: McgravityFastifyOptions,
) => {
  if (options === null || typeof options !== 'object' || options.upstream === undefined)
    throw new TypeError(
      'the mcgravity Fastify plugin needs an upstream (a Cluster, cluster options or a Proxy)',
    );
  const rewritePrefix = options.rewritePrefix ?? '';
  if (typeof rewritePrefix !== 'string' || (rewritePrefix !== '' && !rewritePrefix.startsWith('/')))
    throw new TypeError(
      `rewritePrefix must be '' or a path starting with "/", got ${describeValue(rewritePrefix)}`,
    );
  const owned = !isProxy(options.upstream);
  const proxy = isProxy(options.upstream)
    ? options.upstream
    : createProxy({ ...(options.proxy ?? {}), cluster: options.upstream });
  const prefix = fastify.prefix;
  const upstreamUrl = (url: string): string => {
    const rest = url.slice(prefix.length);
    const path = rewritePrefix + (rest === '' || rest.startsWith('?') ? `/${rest}` : rest);
    return path.startsWith('//') ? path.slice(1) : path;
  };

  // Bodies go upstream as they came: nothing in this scope parses them.
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser('*', (_request, _payload, done) => done(null));
  const forward = async (
    request: { raw: IncomingMessage },
    reply: { hijack(): void; raw: import('node:http').ServerResponse },
  ) => {
    reply.hijack();
    request.raw.url = upstreamUrl(request.raw.url ?? '/');
    proxy.handler(request.raw, reply.raw);
  };
  fastify.all('/', forward);
  fastify.all('/*', forward);

  if (options.websocket !== false) {
    const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const url = req.url ?? '/';
      if (url !== prefix && !url.startsWith(`${prefix}/`) && !url.startsWith(`${prefix}?`)) return;
      req.url = upstreamUrl(url);
      proxy.upgrade(req, socket, head);
    };
    fastify.server.on('upgrade', onUpgrade);
    fastify.addHook('onClose', async () => {
      fastify.server.off('upgrade', onUpgrade);
    });
  }
  if (owned) {
    fastify.addHook('onClose', async () => {
      await proxy.close({ timeoutMs: 1000 });
    });
  }
};

export default mcgravity;
