/**
 * Which endpoint owns each MCP session: an LRU of session id → owner, bounded in size, where a session
 * unused for `idleMs` is forgotten (an MCP session has no lifetime of its own; a client that went away
 * without DELETE leaves it behind). O(1) per lookup (lru-cache), time from the injected clock.
 *
 * Used by the client-side fetch (`createMcpFetch`) and by the proxy's table mode. Knowing the
 * sessions of an endpoint also tells when a draining endpoint is free of them.
 */
import { LRUCache } from 'lru-cache';
import type { Clock } from '../core/clock.js';

/** The owner of a session, and what the table keeps for it. */
export interface SessionEntry<T = undefined> {
  readonly endpointId: string;
  /** Whatever the user of the table keeps per session (the client fetch: its handshake). */
  data: T;
}

/** Sessions → owning endpoint, bounded and expiring when idle. */
export class SessionTable<T = undefined> {
  readonly #sessions: LRUCache<string, SessionEntry<T>>;

  constructor(options: { maxSessions: number; idleMs: number; clock: Clock }) {
    const clock = options.clock;
    this.#sessions = new LRUCache<string, SessionEntry<T>>({
      max: options.maxSessions,
      ttl: options.idleMs,
      updateAgeOnGet: true,
      ttlResolution: 0, // read the injected clock on every check, no cached "now"
      perf: { now: () => clock.now() },
    });
  }

  /** The owner of `sessionId`, refreshing its idle time; undefined when unknown or expired. */
  get(sessionId: string): SessionEntry<T> | undefined {
    return this.#sessions.get(sessionId);
  }

  set(sessionId: string, endpointId: string, data: T): void {
    this.#sessions.set(sessionId, { endpointId, data });
  }

  delete(sessionId: string): void {
    this.#sessions.delete(sessionId);
  }

  /** Sessions known (idle ones not yet expired included). */
  get size(): number {
    return this.#sessions.size;
  }

  /**
   * Live sessions of each of `endpoints`, by id (0 for none; sessions of other endpoints, removed
   * ones, are not counted): O(sessions), for statistics and drains, not the request path.
   */
  countFor(endpoints: readonly { readonly id: string }[]): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const endpoint of endpoints) counts[endpoint.id] = 0;
    for (const entry of this.#sessions.values()) {
      const count = counts[entry.endpointId];
      if (count !== undefined) counts[entry.endpointId] = count + 1;
    }
    return counts;
  }
}
