/**
 * A cluster's events on the diagnostics channels of observe/diagnostics.ts: endpoint state changes,
 * circuit transitions, retries and requeues. Each listener returns at once while nobody subscribes.
 */
import type { EventEmitter } from 'eventemitter3';
import {
  type EndpointMessage,
  endpointChannel,
  type RetryMessage,
  retryChannel,
} from '../observe/diagnostics.js';
import type { RetryPolicy } from '../retry/RetryPolicy.js';
import type { ClusterEvents } from './options.js';

const ENDPOINT_EVENTS = [
  'endpoint:added',
  'endpoint:removed',
  'endpoint:draining',
  'endpoint:up',
  'endpoint:down',
  'endpoint:ejected',
  'endpoint:restored',
  'circuit:open',
  'circuit:half-open',
  'circuit:close',
] as const;

/** Publishes what happens to the cluster `name` on the diagnostics channels. */
export function publishCluster(
  name: string,
  cluster: EventEmitter<ClusterEvents>,
  retry: RetryPolicy | undefined,
): void {
  for (const event of ENDPOINT_EVENTS) {
    cluster.on(event, (info: { id: string; reason?: string }) => {
      if (!endpointChannel.hasSubscribers) return;
      const message: EndpointMessage = {
        cluster: name,
        endpoint: info.id,
        event,
        ...(info.reason === undefined ? {} : { reason: info.reason }),
      };
      endpointChannel.publish(message);
    });
  }
  retry?.on('retry', ({ attempt, reason }) => {
    if (!retryChannel.hasSubscribers) return;
    const message: RetryMessage = { cluster: name, kind: 'retry', attempt, reason };
    retryChannel.publish(message);
  });
  retry?.on('requeue', ({ attempt }) => {
    if (!retryChannel.hasSubscribers) return;
    const message: RetryMessage = { cluster: name, kind: 'requeue', attempt };
    retryChannel.publish(message);
  });
}
