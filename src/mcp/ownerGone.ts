/**
 * Whether the endpoint that owns an MCP session can still serve it, judged from the error of a
 * request pinned to it. Shared by the client-side fetch and the proxy.
 */
import type { Cluster } from '../cluster/Cluster.js';
import { isMcgravityError } from '../core/errors.js';
import { failureKind } from '../core/failures.js';
import { tcpCheck } from '../health/HealthMonitor.js';

/** Why the owner is gone: removed from the cluster, down by health checks, or not accepting connections. */
export type OwnerGoneReason = 'removed' | 'down' | 'refused';

const probe = tcpCheck();
const PROBE_TIMEOUT_MS = 2_000;

/**
 * The reason the owner `endpointId` cannot serve its sessions, or undefined when the error says
 * nothing about that (a timeout, a 5xx: the session may well live on). A reset is ambiguous: a
 * replica that just died resets the kept-alive connection the request went out on, and so does a
 * passing fault; a new TCP connection to the owner tells them apart.
 */
export async function ownerGoneReason(
  cluster: Cluster,
  endpointId: string,
  error: unknown,
): Promise<OwnerGoneReason | undefined> {
  const owner = cluster.endpoints.find((endpoint) => endpoint.id === endpointId);
  if (isMcgravityError(error, 'ESESSIONGONE')) return owner === undefined ? 'removed' : 'down';
  const kind = failureKind(error);
  if (kind === 'connect-failure') return 'refused';
  if (kind !== 'reset' || owner === undefined) return undefined;
  const alive = await probe(owner, AbortSignal.timeout(PROBE_TIMEOUT_MS)).catch(() => false);
  return alive ? undefined : 'refused';
}
