/**
 * Moving an MCP session whose replica is gone: the session's `initialize` request (kept when it was
 * opened) is sent again to another replica, then `notifications/initialized`, so the client's session
 * goes on there under a new server session id. What the old replica held for the session (its
 * subscriptions, say) is not carried over.
 */
import type { Cluster, ClusterFetchInit } from '../cluster/Cluster.js';
import { servedBy } from '../cluster/Cluster.js';
import { PROTOCOL_VERSION_HEADER, SESSION_HEADER } from './protocol.js';

/** The `initialize` request of a session, with the headers it was sent with. */
export interface Handshake {
  readonly body: string;
  readonly headers: [string, string][];
}

const INITIALIZED = '{"jsonrpc":"2.0","method":"notifications/initialized"}';

/** Sends a session's `initialize` and `notifications/initialized` to a live replica. */
export async function replayHandshake(
  cluster: Cluster,
  path: string,
  handshake: Handshake,
  init: ClusterFetchInit,
  lost: string,
): Promise<{ endpointId: string; sessionId: string } | undefined> {
  try {
    const headers = new Headers(handshake.headers);
    headers.delete(SESSION_HEADER);
    const response = await cluster.fetch(path, {
      method: 'POST',
      headers,
      body: handshake.body,
      idempotent: true,
      exclude: new Set([lost]),
      ...(init.signal ? { signal: init.signal } : {}),
    });
    await response.text(); // the initialize answer: read to its end, the session then exists
    const sessionId = response.headers.get(SESSION_HEADER);
    const endpointId = servedBy(response)?.id;
    if (!response.ok || sessionId === null || endpointId === undefined) return undefined;
    const version = new Headers(init.headers).get(PROTOCOL_VERSION_HEADER);
    headers.set(SESSION_HEADER, sessionId);
    if (version !== null) headers.set(PROTOCOL_VERSION_HEADER, version);
    const initialized = await cluster.fetch(path, {
      method: 'POST',
      headers,
      body: INITIALIZED,
      pin: endpointId,
    });
    await initialized.body?.cancel();
    return initialized.ok ? { endpointId, sessionId } : undefined;
  } catch {
    return undefined;
  }
}
