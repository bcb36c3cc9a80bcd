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
import { type Duration, optionalDuration } from '../core/duration.js';
import type { Endpoint } from '../core/endpoint.js';
import { checkKnownOptions, describeValue } from '../core/validate.js';

/** Cookie affinity: the cookie's name and attributes. */
export interface CookieAffinity {
  /** The cookie's name. */
  cookie: string;
  /** Send it over HTTPS only (`Secure`); required with `sameSite: 'none'`. @default false */
  secure?: boolean;
  /** `Domain`, to share it with subdomains. @default none (this host only) */
  domain?: string;
  /** `Path`. @default '/' */
  path?: string;
  /** `Max-Age`, so it outlives the browser session. @default none (a session cookie) */
  maxAgeMs?: Duration;
  /** `SameSite`. @default 'lax' */
  sameSite?: 'strict' | 'lax' | 'none';
}

/** The affinity modes this file handles (MCP affinity is mcp/router.ts's). */
export type KeyedAffinity = 'ip' | CookieAffinity | { header: string };

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
  if (typeof affinity === 'object' && affinity !== null) {
    if (typeof (affinity as { header?: unknown }).header === 'string') {
      checkKnownOptions(affinity, ['header'], 'sessionAffinity');
      return affinity as { header: string };
    }
    if (typeof (affinity as { cookie?: unknown }).cookie === 'string')
      return checkCookie(affinity as CookieAffinity);
  }
  throw new TypeError(
    `sessionAffinity must be 'ip', 'mcp', { cookie: name }, { header: name } or { mcp: options }, got ${describeValue(affinity)}`,
  );
}

function checkCookie(cookie: CookieAffinity): CookieAffinity {
  checkKnownOptions(
    cookie,
    ['cookie', 'secure', 'domain', 'path', 'maxAgeMs', 'sameSite'],
    'sessionAffinity',
  );
  if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(cookie.cookie))
    throw new TypeError(
      `sessionAffinity.cookie must be a cookie name (RFC 6265 token), got ${JSON.stringify(cookie.cookie)}`,
    );
  if (cookie.sameSite !== undefined && !['strict', 'lax', 'none'].includes(cookie.sameSite))
    throw new TypeError(
      `sessionAffinity.sameSite must be 'strict', 'lax' or 'none', got ${describeValue(cookie.sameSite)}`,
    );
  if (cookie.sameSite === 'none' && cookie.secure !== true)
    throw new TypeError("sessionAffinity.sameSite: 'none' needs secure: true (browsers refuse it otherwise)");
  for (const key of ['domain', 'path'] as const) {
    const value = cookie[key];
    if (value !== undefined && (typeof value !== 'string' || /[;\s]/.test(value)))
      throw new TypeError(
        `sessionAffinity.${key} must be a string without spaces or semicolons, got ${describeValue(value)}`,
      );
  }
  optionalDuration(cookie.maxAgeMs, 'sessionAffinity.maxAgeMs', 0);
  return cookie;
}

/** The attributes that follow `name=token` in the affinity cookie, built once. */
function cookieAttributes(cookie: CookieAffinity): string {
  const sameSite = cookie.sameSite ?? 'lax';
  let attributes = `; Path=${cookie.path ?? '/'}; HttpOnly; SameSite=${sameSite[0]?.toUpperCase()}${sameSite.slice(1)}`;
  if (cookie.secure === true) attributes += '; Secure';
  if (cookie.domain !== undefined) attributes += `; Domain=${cookie.domain}`;
  if (cookie.maxAgeMs !== undefined)
    attributes += `; Max-Age=${Math.floor(optionalDuration(cookie.maxAgeMs, 'maxAgeMs', 0) / 1000)}`;
  return attributes;
}

/** Per cluster: a Maglev table over its eligible endpoints, the endpoint of each token and back. */
interface ClusterAffinity {
  readonly balancer: MaglevBalancer;
  readonly tokens: Map<string, string>;
  /** Each endpoint's token, by endpoint id: an HMAC made once per membership change, not per answer. */
  readonly tokenOf: Map<string, string>;
}

/** Affinity state of one proxy. */
export class Affinity {
  readonly #mode: KeyedAffinity | undefined;
  readonly #cookieAttributes: string;
  readonly #secret: string;
  readonly #clusters = new Map<Cluster, ClusterAffinity>();

  /**
   * @param needsTokens tokens will be handed to clients (cookie or stateless MCP affinity): without
   *   a configured secret, warn that they are valid in this process only
   */
  constructor(mode: KeyedAffinity | undefined, secret: string | undefined, needsTokens: boolean) {
    this.#mode = mode;
    this.#cookieAttributes = typeof mode === 'object' && 'cookie' in mode ? cookieAttributes(mode) : '';
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
    return token === cookie.current ? undefined : `${cookie.name}=${token}${this.#cookieAttributes}`;
  }

  /** An opaque token for an endpoint: HMAC of its id, so a client never sees a backend address. */
  tokenOf(cluster: Cluster, endpoint: Endpoint): string {
    return this.#state(cluster).tokenOf.get(endpoint.id) ?? this.#token(cluster, endpoint.id);
  }

  #token(cluster: Cluster, endpointId: string): string {
    return createHmac('sha256', this.#secret)
      .update(`${cluster.name}\u0000${endpointId}`)
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
        tokenOf: new Map(),
      };
      const refresh = () => {
        const eligible = cluster.eligibleEndpoints;
        created.balancer.update(eligible.map((e) => ({ id: e.id, url: e.url, weight: 1, inflight: 0 })));
        created.tokens.clear();
        created.tokenOf.clear();
        for (const endpoint of cluster.endpoints) {
          const token = this.#token(cluster, endpoint.id);
          created.tokens.set(token, endpoint.id);
          created.tokenOf.set(endpoint.id, token);
        }
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

/** The value of cookie `name` in a `Cookie` header (first match), or undefined. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const at = part.indexOf('=');
    if (at !== -1 && part.slice(0, at).trim() === name) return part.slice(at + 1).trim();
  }
  return undefined;
}
