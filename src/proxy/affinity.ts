/**
 * Session affinity: keeping a client on one endpoint.
 *
 * - `'ip'` or `{ header }`: the client's address or a header's value is hashed onto a Maglev table of
 *   the cluster's eligible endpoints, so the same key lands on the same endpoint while membership
 *   holds, and only keys of a lost endpoint move when it goes.
 * - `{ cookie }`: the proxy sets a cookie naming the endpoint that answered, as an opaque token (an
 *   HMAC of cluster and endpoint id under the affinity secret, never an address), and prefers that
 *   endpoint while it is eligible.
 *
 * The same tokens name endpoints in stateless MCP session ids (mcp/router.ts). Without a configured
 * secret the tokens are valid in this process only, which a warning says once.
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { MaglevBalancer } from '../balancer/MaglevBalancer.js';
import type { Cluster } from '../cluster/Cluster.js';
import type { Endpoint } from '../core/endpoint.js';
import { describeValue } from '../core/validate.js';

/** The affinity modes this file handles (MCP affinity is mcp/router.ts's). */
export type KeyedAffinity = 'ip' | { cookie: string } | { header: string };

/** What affinity contributes to one request. */
export interface AffinityChoice {
  /** Hash key for consistent-hash balancers. */
  key?: string;
  /** The endpoint to prefer while it is eligible. */
  prefer?: string;
  /** With cookie affinity: the cookie's name and the token the client sent. */
  cookie?: { readonly name: string; readonly current: string | undefined };
}

const NONE: AffinityChoice = Object.freeze({});

let warned = false;

/** Checks a `sessionAffinity` value other than MCP. */
export function checkKeyedAffinity(affinity: unknown): KeyedAffinity | undefined {
  if (affinity === undefined || affinity === 'ip') return affinity;
  if (
    typeof affinity === 'object' &&
    affinity !== null &&
    (typeof (affinity as { cookie?: unknown }).cookie === 'string' ||
      typeof (affinity as { header?: unknown }).header === 'string')
  ) {
    return affinity as KeyedAffinity;
  }
  throw new TypeError(
    `sessionAffinity must be 'ip', 'mcp', { cookie: name }, { header: name } or { mcp: options }, got ${describeValue(affinity)}`,
  );
}

/** Per cluster: a Maglev table over its eligible endpoints, and the endpoint of each token. */
interface ClusterAffinity {
  readonly balancer: MaglevBalancer;
  readonly tokens: Map<string, string>;
}

/** Affinity state of one proxy. */
export class Affinity {
  readonly #mode: KeyedAffinity | undefined;
  readonly #secret: string;
  readonly #clusters = new Map<Cluster, ClusterAffinity>();

  /**
   * @param needsTokens tokens will be handed to clients (cookie or stateless MCP affinity): without
   *   a configured secret, warn that they are valid in this process only
   */
  constructor(mode: KeyedAffinity | undefined, secret: string | undefined, needsTokens: boolean) {
    this.#mode = mode;
    if (secret === undefined && needsTokens && !warned) {
      warned = true;
      process.emitWarning(
        'mcgravity: no affinitySecret was given, so affinity cookies and MCP session tokens are signed ' +
          'with a random secret valid in this process only: another proxy replica, or this one after a ' +
          'restart, will not recognise them. Give every replica the same affinitySecret (16+ characters).',
        { code: 'MCGRAVITY_EPHEMERAL_SECRET' },
      );
    }
    this.#secret = secret ?? randomBytes(32).toString('hex');
  }

  /** What affinity says about `req` for `cluster`: a hash key, a preferred endpoint, a cookie to set. */
  choose(cluster: Cluster, req: IncomingMessage, client: string): AffinityChoice {
    const mode = this.#mode;
    if (mode === undefined) return NONE;
    if (mode === 'ip' || 'header' in mode) {
      const raw = mode === 'ip' ? client : req.headers[mode.header.toLowerCase()];
      const key = Array.isArray(raw) ? raw[0] : raw;
      if (key === undefined || key === '') return NONE;
      const prefer = this.#state(cluster).balancer.pick({ key })?.id;
      return prefer === undefined ? { key } : { key, prefer };
    }
    const current = readCookie(req.headers.cookie, mode.cookie);
    const prefer = current === undefined ? undefined : this.#state(cluster).tokens.get(current);
    const cookie = { name: mode.cookie, current };
    return prefer === undefined ? { cookie } : { prefer, cookie };
  }

  /** The `Set-Cookie` value for an answer from `endpoint`, or undefined when the client has it already. */
  cookieFor(
    cluster: Cluster,
    endpoint: Endpoint,
    cookie: NonNullable<AffinityChoice['cookie']>,
  ): string | undefined {
    const token = this.tokenOf(cluster, endpoint);
    return token === cookie.current ? undefined : `${cookie.name}=${token}; Path=/; HttpOnly; SameSite=Lax`;
  }

  /** An opaque token for an endpoint: HMAC of its id, so a client never sees a backend address. */
  tokenOf(cluster: Cluster, endpoint: Endpoint): string {
    return createHmac('sha256', this.#secret)
      .update(`${cluster.name}\u0000${endpoint.id}`)
      .digest('base64url')
      .slice(0, 16);
  }

  /** The endpoint id a token names, if it names one of `cluster`'s endpoints. */
  endpointOf(cluster: Cluster, token: string): string | undefined {
    return this.#state(cluster).tokens.get(token);
  }

  #state(cluster: Cluster): ClusterAffinity {
    let state = this.#clusters.get(cluster);
    if (state === undefined) {
      const created: ClusterAffinity = {
        balancer: new MaglevBalancer({ tableSize: 4099 }),
        tokens: new Map(),
      };
      const refresh = () => {
        const eligible = cluster.eligibleEndpoints;
        created.balancer.update(eligible.map((e) => ({ id: e.id, url: e.url, weight: 1, inflight: 0 })));
        created.tokens.clear();
        for (const endpoint of cluster.endpoints)
          created.tokens.set(this.tokenOf(cluster, endpoint), endpoint.id);
      };
      refresh();
      cluster.on('membership', refresh);
      cluster.on('endpoint:added', refresh);
      state = created;
      this.#clusters.set(cluster, state);
    }
    return state;
  }
}

function readCookie(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const at = part.indexOf('=');
    if (at !== -1 && part.slice(0, at).trim() === name) return part.slice(at + 1).trim();
  }
  return undefined;
}
